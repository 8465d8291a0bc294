// oidc-provider ships no types; the tests use a small part of it through its documented options.
declare module 'oidc-provider';
