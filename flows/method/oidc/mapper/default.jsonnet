// The default mapper of caddy-kratos: for the built-in identity schema
// (traits.email, traits.name.first, traits.name.last). The email is marked
// verified only when the provider says it verified it.
local claims = { email_verified: false } + std.extVar('claims');
local given = std.get(claims, 'given_name', '');
local family = std.get(claims, 'family_name', '');
local full = std.get(claims, 'name', '');
local name =
  (if given != '' then { first: given } else if family == '' && full != '' then { first: full } else {}) +
  (if family != '' then { last: family } else {});
{
  identity: {
    traits: {
      [if 'email' in claims then 'email' else null]: claims.email,
      [if std.length(name) > 0 then 'name' else null]: name,
    },
    verified_addresses: if 'email' in claims && claims.email_verified then
      [{ via: 'email', value: claims.email }] else [],
  },
}
