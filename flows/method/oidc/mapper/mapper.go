// Package mapper turns an identity provider's claims into identity traits
// with a Jsonnet mapper in Kratos's format: the claims are
// std.extVar('claims') (provider.Claims), and the mapper returns
// identity.traits, optionally identity.verified_addresses,
// identity.metadata_public and identity.metadata_admin. A Kratos user's
// mapper files work as they are.
//
// It imports only go-jsonnet and the provider package; never flows.
package mapper

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-jsonnet"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
)

//go:embed default.jsonnet
var defaultSource string

// Mapper is one compiled (syntax-checked) mapper.
type Mapper struct {
	name   string // for error messages: the file, or "default"
	source string
}

// Result is what the mapper made of the claims.
type Result struct {
	// Traits is identity.traits, a JSON object (not yet validated against
	// the identity schema: the method does that, and a failure sends the
	// user to complete the registration form).
	Traits json.RawMessage
	// VerifiedAddresses are the addresses the mapper vouches for; the
	// method marks the identity's matching verifiable addresses verified.
	VerifiedAddresses []VerifiedAddress
	// MetadataPublic and MetadataAdmin are nil when the mapper set none.
	MetadataPublic json.RawMessage
	MetadataAdmin  json.RawMessage
}

// VerifiedAddress is one entry of identity.verified_addresses.
type VerifiedAddress struct {
	Value string `json:"value"`
	Via   string `json:"via"`
}

// Limits on one evaluation. A mapper is the operator's code, but it runs on
// claims a user influences: it gets a deadline, a bounded stack and output,
// no imports, and only so many evaluations at once (go-jsonnet cannot be
// interrupted, so one that runs past its deadline keeps its slot until it
// ends and cannot pile up).
const (
	maxSourceBytes = 256 << 10
	maxOutputBytes = 256 << 10
)

var timeout = 2 * time.Second // a variable for the test of a runaway mapper

var slots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// Default is the built-in mapper: email (verified when the provider says
// so) and name for the built-in identity schema.
func Default() *Mapper {
	return &Mapper{name: "default", source: defaultSource}
}

// Load reads a mapper the way Kratos's mapper_url names it: a path,
// file://<path> or base64://<jsonnet>. Remote URLs are refused (the mapper
// is read once, at start, and never fetched at sign-in). An empty ref is
// the default mapper.
func Load(ref string) (*Mapper, error) {
	switch {
	case ref == "":
		return Default(), nil
	case strings.HasPrefix(ref, "base64://"):
		src, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ref, "base64://"))
		if err != nil {
			src, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimPrefix(ref, "base64://"), "="))
		}
		if err != nil {
			return nil, fmt.Errorf("mapper: base64:// value does not decode: %w", err)
		}
		return Parse("base64 mapper", string(src))
	case strings.HasPrefix(ref, "http://"), strings.HasPrefix(ref, "https://"):
		return nil, fmt.Errorf("mapper %q: remote mappers are not fetched; use a file or base64://", ref)
	}
	path := strings.TrimPrefix(ref, "file://")
	f, err := os.Open(path) // #nosec G304 -- the operator's configured mapper file
	if err != nil {
		return nil, fmt.Errorf("mapper: %w", err)
	}
	defer func() { _ = f.Close() }()
	src, err := io.ReadAll(io.LimitReader(f, maxSourceBytes+1))
	if err != nil {
		return nil, fmt.Errorf("mapper %s: %w", path, err)
	}
	return Parse(path, string(src))
}

// Parse syntax-checks a mapper, so a broken one stops the start.
func Parse(name, source string) (*Mapper, error) {
	if len(source) > maxSourceBytes {
		return nil, fmt.Errorf("mapper %s: larger than %d bytes", name, maxSourceBytes)
	}
	if _, err := jsonnet.SnippetToAST(name, source); err != nil {
		return nil, fmt.Errorf("mapper %s: %w", name, err)
	}
	return &Mapper{name: name, source: source}, nil
}

// Name is the mapper's file (or "default").
func (m *Mapper) Name() string { return m.name }

// ErrMapper wraps every failure of Map: the mapper failed or returned
// something that is not Kratos's shape. It is a configuration problem, not
// the user's.
var ErrMapper = errors.New("the OpenID Connect Jsonnet mapper failed")

// Map runs the mapper on the claims.
func (m *Mapper) Map(ctx context.Context, claims *provider.Claims) (*Result, error) {
	in, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMapper, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s: too many mappers running", ErrMapper, m.name)
	}
	type answer struct {
		out string
		err error
	}
	done := make(chan answer, 1)
	go func() {
		defer func() { <-slots }()
		vm := jsonnet.MakeVM()
		vm.Importer(noImports{})
		vm.SetTraceOut(io.Discard)
		vm.ExtCode("claims", string(in))
		out, err := vm.EvaluateAnonymousSnippet(m.name, m.source)
		done <- answer{out, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s: no answer within %s", ErrMapper, m.name, timeout)
	}
	if a.err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMapper, m.name, a.err)
	}
	if len(a.out) > maxOutputBytes {
		return nil, fmt.Errorf("%w: %s: output larger than %d bytes", ErrMapper, m.name, maxOutputBytes)
	}
	return decodeOutput(m.name, []byte(a.out))
}

func decodeOutput(name string, out []byte) (*Result, error) {
	var doc struct {
		Identity map[string]json.RawMessage `json:"identity"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: output is not an object: %v", ErrMapper, name, err)
	}
	isObject := func(raw json.RawMessage) bool {
		t := bytes.TrimSpace(raw)
		return len(t) > 0 && t[0] == '{'
	}
	r := &Result{}
	traits, ok := doc.Identity["traits"]
	if !ok || !isObject(traits) {
		return nil, fmt.Errorf("%w: %s did not return an object for key identity.traits. Please check your Jsonnet code", ErrMapper, name)
	}
	r.Traits = traits
	for key, dst := range map[string]*json.RawMessage{"metadata_public": &r.MetadataPublic, "metadata_admin": &r.MetadataAdmin} {
		raw, ok := doc.Identity[key]
		if !ok {
			continue
		}
		if !isObject(raw) {
			return nil, fmt.Errorf("%w: %s did not return an object for key identity.%s. Please check your Jsonnet code", ErrMapper, name, key)
		}
		*dst = raw
	}
	if raw, ok := doc.Identity["verified_addresses"]; ok {
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
			return nil, fmt.Errorf("%w: %s did not return an array for key identity.verified_addresses. Please check your Jsonnet code", ErrMapper, name)
		}
		if err := json.Unmarshal(raw, &r.VerifiedAddresses); err != nil {
			return nil, fmt.Errorf("%w: %s: identity.verified_addresses: %v", ErrMapper, name, err)
		}
		for i := range r.VerifiedAddresses {
			va := &r.VerifiedAddresses[i]
			if va.Via == "email" {
				va.Value = strings.ToLower(strings.TrimSpace(va.Value))
			}
		}
	}
	return r, nil
}

// noImports refuses import and importstr: a mapper reads its claims, not
// the server's files.
type noImports struct{}

func (noImports) Import(_, path string) (jsonnet.Contents, string, error) {
	return jsonnet.Contents{}, "", fmt.Errorf("imports are not allowed in mappers (%q)", path)
}
