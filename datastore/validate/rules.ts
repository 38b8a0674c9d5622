// Calico policy rules (Rule, EntityRule, ICMP, ports) and the policy specs built from them,
// checked as Calico's validator and CRD rules check them.
import { parseCidr } from '../net.js';
import type { Rule } from '../model.js';
import { type Check, type Ctx, at, bool, int, join, list, map, number, obj, oneOf, required, string, refine, unimplemented } from './schema.js';
import { labelKeyProblem, labelValue, name, net, parsePort, port, protocol, protocolHasPorts, selector } from './values.js';

const icmpFields = refine(obj({ type: int(0, 254), code: int(0, 255) }), (v, path, ctx) => {
  if (v.code !== undefined && v.type === undefined) ctx.error(join(path, 'code'), 'ICMP code specified without an ICMP type');
});

const entityRule = obj({
  nets: list(net),
  notNets: list(net),
  selector: selector(),
  notSelector: selector(),
  namespaceSelector: selector({ allowGlobal: true }),
  ports: list(port),
  notPorts: list(port),
  services: unimplemented(obj({ name: string, namespace: string }), 'the rule matches as if it were absent'),
  serviceAccounts: obj({ names: list(string), selector: selector() }),
});

const ruleFields = obj({
  action: required(oneOf(['Allow', 'Deny', 'Log', 'Pass'])),
  ipVersion: oneOf([4, 6]),
  protocol,
  notProtocol: protocol,
  icmp: icmpFields,
  notICMP: icmpFields,
  source: entityRule,
  destination: entityRule,
  http: unimplemented(
    obj({ methods: list(string), paths: list(obj({ exact: string, prefix: string })) }),
    'HTTP matches need an application-layer proxy',
  ),
  metadata: obj({ annotations: map(string) }),
});

const isIcmp = (p: unknown) => p === 'ICMP' || p === 1;
const isIcmp6 = (p: unknown) => p === 'ICMPv6' || p === 58;

/** Calico's cross-field rule checks (validateRule and the Rule/EntityRule CEL rules). */
function ruleChecks(r: Rule, path: string, ctx: Ctx): void {
  for (const f of ['icmp', 'notICMP'] as const) {
    const proto = f === 'icmp' ? r.protocol : r.notProtocol;
    if (r[f] && !(isIcmp(proto) || isIcmp6(proto))) {
      ctx.error(join(path, f), `ICMP fields require ${f === 'icmp' ? 'protocol' : 'notProtocol'} to be ICMP or ICMPv6`);
    }
  }
  for (const f of ['protocol', 'notProtocol'] as const) {
    if (isIcmp(r[f]) && r.ipVersion === 6) ctx.error(join(path, f), 'protocol ICMP requires ipVersion 4');
    if (isIcmp6(r[f]) && r.ipVersion === 4) ctx.error(join(path, f), 'protocol ICMPv6 requires ipVersion 6');
  }
  // Ports only make sense with a protocol that has them; named ports are resolved per endpoint.
  for (const side of ['source', 'destination'] as const) {
    const e = r[side];
    if (!e) continue;
    for (const f of ['ports', 'notPorts'] as const) {
      const ports = e[f];
      if (!ports?.length) continue;
      const fp = join(join(path, side), f);
      if (r.protocol === undefined) {
        ports.forEach((p, i) => {
          const parsed = parsePort(p);
          if (typeof parsed !== 'string' && parsed.kind === 'range') {
            ctx.error(at(fp, i), 'rules with numeric port or port range must set protocol to TCP or UDP or SCTP');
          }
        });
      } else if (!protocolHasPorts(r.protocol)) {
        ctx.error(fp, `rules that specify ports must set protocol to TCP or UDP or SCTP (not ${r.protocol})`);
      }
    }
    if (e.services) {
      const sp = join(join(path, side), 'services');
      if (!e.services.name) ctx.error(join(sp, 'name'), 'services must specify a service name');
      for (const f of ['namespaceSelector', 'selector', 'notSelector', 'nets', 'notNets', 'serviceAccounts'] as const) {
        const v = e[f];
        if (v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0)) ctx.error(join(join(path, side), f), 'cannot be combined with services on the same rule');
      }
      if (side === 'destination' && (e.ports?.length || e.notPorts?.length)) {
        ctx.error(join(join(path, side), e.ports?.length ? 'ports' : 'notPorts'), 'cannot be combined with destination services (the service defines the ports)');
      }
    }
  }
  // Address families must agree with each other and with ipVersion.
  let seen: number | undefined;
  for (const side of ['source', 'destination'] as const) {
    for (const f of ['nets', 'notNets'] as const) {
      (r[side]?.[f] ?? []).forEach((n, i) => {
        const c = parseCidr(n);
        if (!c) return;
        const p = at(join(join(path, side), f), i);
        if (r.ipVersion !== undefined && c.version !== r.ipVersion) ctx.error(p, `IPv${c.version} CIDR in a rule with ipVersion ${r.ipVersion}`);
        else if (seen !== undefined && seen !== c.version) ctx.error(p, 'rule contains both IPv4 and IPv6 CIDRs');
        seen ??= c.version;
        if (f === 'notNets' && c.prefix === 0) ctx.error(p, 'catch-all CIDR in negation creates a logical contradiction (matches no traffic)');
      });
    }
  }
  if (r.http && r.action !== 'Allow') ctx.error(join(path, 'http'), 'HTTP match is only valid on Allow rules');
}

export const rule: Check = refine(ruleFields, (r: Rule, path, ctx) => ruleChecks(r, path, ctx));
export const rules = list(rule);

const policyType = oneOf(['Ingress', 'Egress']);
const types = refine(list(policyType), (v: string[], path, ctx) => {
  v.forEach((t, i) => {
    if (v.indexOf(t) !== i) ctx.error(at(path, i), `'${t}' type specified more than once`);
  });
});

const policyCommon = {
  tier: name('label'),
  order: number,
  selector: selector(),
  types,
  ingress: rules,
  egress: rules,
  serviceAccountSelector: selector(),
  performanceHints: unimplemented(list(oneOf(['AssumeNeededOnEveryNode']))),
};

export const networkPolicySpec = obj(policyCommon);

export const globalNetworkPolicySpec = obj({
  ...policyCommon,
  namespaceSelector: selector(),
  doNotTrack: unimplemented(bool, 'the policy applies as a normal policy'),
  preDNAT: unimplemented(bool, 'the policy applies as a normal policy'),
  applyOnForward: bool,
});

export const profileSpec = obj({
  ingress: rules,
  egress: rules,
  labelsToApply: map(labelValue, labelKeyProblem),
});

/** Calico's policy defaulting: types from the rules present, tier `default`, empty lists. */
export function defaultPolicy(spec: Record<string, any>, labels: Record<string, string>, global: boolean, path: string, ctx: Ctx): void {
  spec.ingress ??= [];
  spec.egress ??= [];
  if (!spec.types?.length) {
    if (spec.egress.length === 0) spec.types = ['Ingress'];
    else if (spec.ingress.length === 0) spec.types = ['Egress'];
    else spec.types = ['Ingress', 'Egress'];
  }
  spec.tier ??= 'default';
  spec.selector ??= 'all()';
  labels['projectcalico.org/tier'] = spec.tier;
  if (spec.tier !== 'default') {
    ctx.warn(join(path, 'tier'), `Petrel has one tier (no Tier resources); policy tier "${spec.tier}" is ordered within it`);
  }
  if (global) {
    spec.doNotTrack ??= false;
    spec.preDNAT ??= false;
    spec.applyOnForward ??= false;
    if (spec.doNotTrack && spec.preDNAT) ctx.error(join(path, 'preDNAT'), 'doNotTrack and preDNAT cannot both be true');
    if (spec.preDNAT && spec.types.includes('Egress')) ctx.error(join(path, 'types'), 'preDNAT policies may only apply to Ingress');
    if ((spec.doNotTrack || spec.preDNAT) && !spec.applyOnForward) {
      ctx.error(join(path, 'applyOnForward'), 'must be true when doNotTrack or preDNAT is set');
    }
  }
}
