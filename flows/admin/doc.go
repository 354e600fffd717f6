// Package admin is the Kratos admin API (the `identity` tag of Kratos's
// OpenAPI document): identities, their sessions, and recovery codes and
// links an administrator creates. API serves it at Kratos's paths without
// any access control of its own: caddymodule mounts it on Caddy's admin
// endpoint, never on a public site.
//
//	GET    /admin/identities                 listIdentities
//	POST   /admin/identities                 createIdentity
//	PATCH  /admin/identities                 batchPatchIdentities
//	GET    /admin/identities/{id}            getIdentity
//	PUT    /admin/identities/{id}            updateIdentity
//	PATCH  /admin/identities/{id}            patchIdentity
//	DELETE /admin/identities/{id}            deleteIdentity
//	GET    /admin/identities/{id}/sessions   listIdentitySessions
//	DELETE /admin/identities/{id}/sessions   deleteIdentitySessions
//	GET    /admin/sessions/{id}              getSession
//	DELETE /admin/sessions/{id}              disableSession
//	PATCH  /admin/sessions/{id}/extend       extendSession
//	POST   /admin/recovery/code              createRecoveryCodeForIdentity
//	POST   /admin/recovery/link              createRecoveryLinkForIdentity
//	GET    /admin/audit                      listAudit (the audit trail; not Kratos's)
//	GET    /admin/health/alive, /admin/health/ready
//	GET    /schemas, /schemas/{id}           listIdentitySchemas, getIdentitySchema
//
// It imports flows/event (what it records), flows/flow (recovery flows are the kernel's), flows/session,
// flows/identity, flows/node, flows/token, flows/wire, flows/event and
// sessionstore, never the root flows package or a flow package: the
// recovery flow's forms, the public handlers the admin port shares
// (schemas, health) and the audit trail (an event.Log) are handed to New.
package admin
