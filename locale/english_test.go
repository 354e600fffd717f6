package locale

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// English must stay what the engine and the courier produce today: the
// engine's message catalogue and error texts and the courier's own
// templates stay the source of truth, and these tests read them from the
// repository.

// findGoDecl returns the parsed file under root that declares the
// package-level variable or type name (found wherever the flows split puts
// it).
func findGoDecl(t *testing.T, root, name string) (*ast.File, string) {
	t.Helper()
	var found *ast.File
	var foundPath string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || found != nil {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range g.Specs {
				switch x := s.(type) {
				case *ast.ValueSpec:
					for _, n := range x.Names {
						if n.Name == name {
							found, foundPath = f, p
						}
					}
				case *ast.TypeSpec:
					if x.Name.Name == name {
						found, foundPath = f, p
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == nil {
		t.Fatalf("no declaration of %s under %s: if the pages now read this package, compare against a golden copy instead", name, root)
	}
	return found, foundPath
}

// compositeOf returns the composite literal assigned to variable name.
func compositeOf(t *testing.T, f *ast.File, name string) *ast.CompositeLit {
	t.Helper()
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range g.Specs {
			vs, ok := s.(*ast.ValueSpec)
			if !ok {
				continue
			}
			for i, n := range vs.Names {
				if n.Name == name && i < len(vs.Values) {
					if cl, ok := vs.Values[i].(*ast.CompositeLit); ok {
						return cl
					}
				}
			}
		}
	}
	t.Fatalf("%s is not a composite literal", name)
	return nil
}

func unquote(t *testing.T, e ast.Expr) string {
	t.Helper()
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		t.Fatalf("not a string literal: %#v", e)
	}
	s, err := strconv.Unquote(bl.Value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type kratosText struct{ typ, tpl string }

// flowsCatalogue reads flows' catalogue (id → type and Go-verb template).
func flowsCatalogue(t *testing.T) map[int]kratosText {
	f, path := findGoDecl(t, "../flows", "catalogue")
	out := map[int]kratosText{}
	for _, el := range compositeOf(t, f, "catalogue").Elts {
		kv := el.(*ast.KeyValueExpr)
		id, err := strconv.Atoi(kv.Key.(*ast.BasicLit).Value)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		v := kv.Value.(*ast.CompositeLit)
		out[id] = kratosText{typ: unquote(t, v.Elts[0]), tpl: unquote(t, v.Elts[1])}
	}
	if len(out) < 150 {
		t.Fatalf("%s: only %d entries read", path, len(out))
	}
	return out
}

type secretEntry struct {
	ID      int            `json:"id"`
	Text    string         `json:"text"`
	Type    string         `json:"type"`
	Context map[string]any `json:"context,omitempty"`
}

// sampleArg is a value of the type the engine passes for a variable.
func sampleArg(name string, verb byte) any {
	switch {
	case name == "used_at":
		return time.Date(2024, 3, 5, 10, 7, 9, 0, time.UTC)
	case name == "allowed_types":
		return []string{"string", "number"}
	case name == "secrets":
		return []secretEntry{
			{ID: 1050009, Text: "ab12cd34", Type: "info", Context: map[string]any{"secret": "ab12cd34"}},
			{ID: 1050014, Text: "Secret was used at …", Type: "info", Context: map[string]any{"used_at": time.Now()}},
			{ID: 1050009, Text: "ef56gh78", Type: "info", Context: map[string]any{"secret": "ef56gh78"}},
		}
	case verb == 'f':
		return 12.3456
	case verb == 'd':
		return 17
	case verb == 'v':
		return 4.5
	case name == "pattern" || name == "duplicate_identifier":
		return `a"b\c`
	}
	return "sample-" + name
}

// kratosArg is what the engine formats into the %-template for an
// argument: the engine's own computation where it differs from the value.
func kratosArg(name string, v any) any {
	switch name {
	case "used_at":
		return v.(time.Time).String()
	case "allowed_types":
		return strings.Join(v.([]string), ",")
	case "secrets":
		var parts []string
		for _, s := range v.([]secretEntry) {
			if s.ID == 1050014 {
				parts = append(parts, "used")
			} else {
				parts = append(parts, s.Context["secret"].(string))
			}
		}
		return strings.Join(parts, ", ")
	}
	return v
}

var goVerb = regexp.MustCompile(`%(\[\d+\])?(\.2f|[sdqv])`)

func TestEnglishMessagesEqualFlowsCatalogue(t *testing.T) {
	cat := flowsCatalogue(t)
	c := Builtin()
	en := c.bundles[English]
	for id, kt := range cat {
		info, ok := messageInfo[id]
		if !ok {
			t.Errorf("%d: in flows' catalogue, not here", id)
			continue
		}
		if info.Type != kt.typ {
			t.Errorf("%d: type %q, flows has %q", id, info.Type, kt.typ)
		}
		mt, ok := en.msgs[id]
		if !ok {
			t.Errorf("%d: no English text", id)
			continue
		}
		// The verbs of the Go template, in argument order.
		verbs := map[int]byte{}
		next := 0
		for _, m := range goVerb.FindAllStringSubmatch(kt.tpl, -1) {
			i := next
			if m[1] != "" {
				i, _ = strconv.Atoi(m[1][1 : len(m[1])-1])
				i--
			}
			verbs[i] = m[2][len(m[2])-1]
			next = i + 1
		}
		if len(verbs) != len(info.Args) {
			t.Errorf("%d: %d arguments in %q, Args has %v", id, len(verbs), kt.tpl, info.Args)
			continue
		}
		vars := map[string]any{VarText: "the flow's text"}
		args := make([]any, len(info.Args))
		for i, name := range info.Args {
			v := sampleArg(name, verbs[i])
			vars[name] = v
			args[i] = kratosArg(name, v)
		}
		want := kt.tpl
		if len(args) > 0 {
			want = fmt.Sprintf(kt.tpl, args...)
		}
		var b strings.Builder
		if err := mt.tpl.Execute(&b, vars); err != nil {
			t.Errorf("%d: %v", id, err)
			continue
		}
		if b.String() != want {
			t.Errorf("%d: English renders\n%q\nflows renders\n%q", id, b.String(), want)
		}
	}
	for id := range messageInfo {
		if _, ok := cat[id]; !ok {
			t.Errorf("%d: here, not in flows' catalogue", id)
		}
	}
}

// TestMessageInfoMatchesSpec holds the ids, types and context keys against
// the spec's table (../shared/spec/messages.md, outside the repository).
func TestMessageInfoMatchesSpec(t *testing.T) {
	b, err := os.ReadFile("../../shared/spec/messages.md")
	if err != nil {
		t.Skip("spec not present:", err)
	}
	row := regexp.MustCompile(`(?m)^\| (\d{7}) \| (\w+) \| \w+ \| .* \| ([^|]*) \|$`)
	n := 0
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		n++
		id, _ := strconv.Atoi(m[1])
		info, ok := messageInfo[id]
		if !ok {
			t.Errorf("%d: in the spec, not here", id)
			continue
		}
		if info.Type != m[2] {
			t.Errorf("%d: type %q, spec %q", id, info.Type, m[2])
		}
		var keys []string
		if s := strings.TrimSpace(m[3]); s != "" {
			keys = strings.Split(s, ",")
		}
		if !slices.Equal(keys, info.Context) {
			t.Errorf("%d: context %v, spec %v", id, info.Context, keys)
		}
	}
	if n != len(messageInfo) {
		t.Errorf("spec has %d ids, here %d", n, len(messageInfo))
	}
}

// The page strings: flows/ui's TestEnglishPageStringsUnchanged keeps the
// English ones what the pages had before they read this package, and its
// TestPageKeysInEveryLanguage checks every key they use.

// TestKratosErrorTextsEqualFlows: the English "kratos." texts are string
// literals of the engine's error constructors.
func TestKratosErrorTextsEqualFlows(t *testing.T) {
	f, path := findGoDecl(t, "../flows", "csrfReason")
	lits := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
			if s, err := strconv.Unquote(bl.Value); err == nil {
				lits[s] = true
			}
		}
		return true
	})
	n := 0
	for k, v := range englishPages() {
		if !strings.HasPrefix(k, "kratos.") {
			continue
		}
		n++
		if !lits[v] {
			t.Errorf("%q: %q is not a string of %s", k, v, path)
		}
	}
	if n < 20 {
		t.Fatalf("only %d kratos. texts", n)
	}
}

func TestEnglishMailEqualsCourierTemplates(t *testing.T) {
	root := "../courier/templates"
	var courier []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		courier = append(courier, filepath.ToSlash(rel))
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := mailFS.ReadFile("mail/en/" + filepath.ToSlash(rel))
		if err != nil {
			t.Errorf("%s: no English copy: %v", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the English copy differs from the courier's:\n%q\n%q", rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ours, err := walkFS(mailFS, "mail/en")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ours {
		ours[i] = strings.TrimPrefix(ours[i], "mail/en/")
	}
	sort.Strings(courier)
	sort.Strings(ours)
	if !slices.Equal(courier, ours) || len(ours) != 3*len(mailTemplateIDs) {
		t.Errorf("files differ:\ncourier %v\nhere    %v", courier, ours)
	}
}

// TestMailIDsAndFieldsEqualCourier: the template ids and TemplateData's
// fields are the courier's.
func TestMailIDsAndFieldsEqualCourier(t *testing.T) {
	f, path := findGoDecl(t, "../courier", "TemplateData")
	var fields []string
	var ids []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.TypeSpec:
			if x.Name.Name == "TemplateData" {
				for _, fl := range x.Type.(*ast.StructType).Fields.List {
					for _, nm := range fl.Names {
						fields = append(fields, nm.Name)
					}
				}
			}
		case *ast.ValueSpec:
			if id, ok := x.Type.(*ast.Ident); ok && id.Name == "TemplateID" && len(x.Values) == 1 {
				ids = append(ids, unquote(t, x.Values[0]))
			}
		}
		return true
	})
	var ours []string
	for k := range mailFields {
		ours = append(ours, k)
	}
	sort.Strings(fields)
	sort.Strings(ours)
	if !slices.Equal(fields, ours) {
		t.Errorf("%s: TemplateData has %v, mailFields %v", path, fields, ours)
	}
	sort.Strings(ids)
	mine := MailTemplateIDs()
	sort.Strings(mine)
	if !slices.Equal(ids, mine) {
		t.Errorf("%s: TemplateIDs %v, here %v", path, ids, mine)
	}
}
