// Public surface of acl/: selectors, policy model, label index, iptables/ipset dataplane.
export * from './selector.js';
