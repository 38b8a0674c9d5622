// Public surface of bgp/: the in-process BGP speaker.
//
//   const sp = new BgpSpeaker({ routerId, asNumber, listenPort, listenAddress?, gracefulRestart: { restartTime, deferralTime? }, log? });
//   await sp.start();                      // listen, start every configured session
//   sp.configure(cfg: SpeakerConfig);      // live: only affected sessions open/close/reset
//   sp.setExports(prefixes: ExportPrefix[]);  // what this node originates (next hop self);
//                                          // the first call unlocks advertising + End-of-RIB
//   sp.onBestRoutes((changes: RouteChange[]) => ...);   // Loc-RIB best-path changes (learned
//                                          // routes only; our own exports are not echoed)
//   sp.bestRoutes(): RouteChange[]         // the whole current Loc-RIB (late consumers)
//   sp.onInitialSync(cb) / sp.initialSyncDone()   // End-of-RIB from every peer or deferral timer
//   sp.ready(): { ready, reason? }         // every peer Established or within its grace period
//   sp.status(): BgpStatus                 // CONTRACT §2 /status bgp section
//   await sp.stop({ graceful })            // graceful: no Cease, peers keep our routes (RFC 4724)
//
// Only OPEN-relevant peer changes (asNumber, port, sourceAddress, password, holdTime,
// ttlSecurity) or a local AS / router ID change reset sessions.
export * from './types.js';
export { BgpSpeaker, normAddr } from './speaker.js';
export { native as nativeSockopt } from './native.js';
export { secretResolverFromDir, type SecretRef } from './secrets.js';
