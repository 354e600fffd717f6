// Package identity is what the engine knows about identities apart from
// any flow: the identity schemas (traits, their UI nodes and validation
// messages, the addresses and identifiers they mark), form traits typed by
// the schema, credentials' stored configuration, password hashing (bcrypt,
// argon2id, and the imported formats Kratos verifies) behind a memory
// budget, the password policy and the embedded list of breached passwords.
//
// It imports flows/wire, flows/node, flows/token, flows/budget, the
// sessionstore types and the standard library; nothing of the flows.
package identity
