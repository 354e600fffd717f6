// Package profile is the profile method: the settings flow's group of
// traits, validated by the identity's schema. A change of identifiers or
// addresses needs a privileged session (decided on the identity as read
// and again as written); credential identifiers and addresses follow the
// traits, and new addresses are verified.
//
// It imports flows/flow, flows/session, flows/identity and flows/node.
package profile
