// Package settings is the settings flow (a flow.Kind): the signed-in
// identity changes its traits and credentials one method's group at a
// time. The flow belongs to the request's session; it asks for a second
// factor (the AAL rule) and a recent login (privileged changes) when
// they are due, applies a method's change to the identity as it is at
// write time, and answers with the flow again.
//
// It imports flows/event (what it records), flows/flow, flows/session, flows/identity, flows/node,
// flows/wire and flows/token; its methods come in as flow.SettingsMethod values.
package settings
