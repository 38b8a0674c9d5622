// Alias named by issue 4 (`npm run bench -- fuzz`): the BGP codec mutation fuzzer, bench/bgp-fuzz.ts.
export { default } from './bgp-fuzz.js';
