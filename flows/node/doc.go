// Package node is the UI of a flow as Kratos sends it: the container
// (action, method, nodes, messages), the nodes and their attributes, and
// the message catalogue (Text by Kratos's UiText id, with its English
// template). Methods and flows build their forms from it; the built-in
// pages render it.
//
// It imports only the standard library.
package node
