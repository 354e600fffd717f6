// Package wire is what the engine says on HTTP, whatever the flow: Kratos's
// error shape (Error and its constructors) and the JSON writers, content
// negotiation (PrefersHTML) and submit bodies (JSON, url-encoded and
// multipart, bounded one by one and all together), the public URLs and
// redirects, and the one pagination Link writer.
//
// It imports the standard library and flows/budget only; every other
// package of the engine may import it.
package wire
