// A Kratos-style mapper for the golden tests: email and name from the
// provider's claims.
local claims = std.extVar('claims');
{
  identity: {
    traits: {
      email: claims.email,
      name: { first: std.get(claims, 'given_name', '') },
    },
  },
}
