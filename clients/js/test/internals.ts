// What the unit tests reach: the client's modules, without centrifuge-js
// (the tests give the client a fake Centrifuge).
export { Client } from "../src/client";
export { Recent, matches, normalize } from "../src/normalize";
export { TokenService, TokenServiceError, identityOf, jwtClaims } from "../src/api";
