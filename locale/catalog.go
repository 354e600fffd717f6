package locale

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"

	"github.com/BurntSushi/toml"
)

// English is the language of Kratos's texts and the last fallback of every
// lookup.
const English = "en"

// BuiltinLanguages are the languages shipped complete.
var BuiltinLanguages = []string{"en", "de", "fr", "es", "pt"}

//go:embed builtin/*.json
var builtinFS embed.FS

// Options configure a Catalog.
type Options struct {
	// Languages the pages offer and negotiate (canonical or not: "pt-br"
	// is read as pt-BR). Empty: every built-in language and every language
	// of Dir.
	Languages []string
	// Default is the language when nothing matches ("" is English). It is
	// always enabled.
	Default string
	// Dir holds translation files read at start (see the package
	// documentation); "" for none.
	Dir string
}

// Catalog holds every language's texts. It is immutable once loaded and
// safe for concurrent use.
type Catalog struct {
	def     string
	langs   []string
	enabled map[string]bool
	bundles map[string]*bundle
	// known maps the English text of a "kratos." page key to the key, so
	// that an error page can translate Kratos's error messages it holds.
	known map[string]string
}

// bundle is one language's texts (built-in ones with the files of Dir
// applied on top).
type bundle struct {
	lang  string
	name  string
	fmts  *formats // nil: inherited from the parent language, then English
	msgs  map[int]*msgTpl
	pages map[string]*pageStr
	mail  map[string]*mailFile // "recovery_code_valid/email.subject.gotmpl"
}

type msgTpl struct {
	src      string
	origin   string // file of the text, for errors
	builtin  bool
	stock    bool // the built-in English: the flow's own text is shown instead
	usesZone bool // calls datetime/date: executed on a clone bound to the zone
	tpl      *template.Template
}

type pageStr struct {
	s       string
	origin  string
	builtin bool
}

// textFile is the content of a translation file (JSON or TOML).
type textFile struct {
	Name     string            `json:"name" toml:"name"`
	Messages map[string]string `json:"messages" toml:"messages"`
	Pages    map[string]string `json:"pages" toml:"pages"`
	Formats  *fileFormats      `json:"formats" toml:"formats"`
}

type fileFormats struct {
	DateTime string   `json:"datetime" toml:"datetime"`
	Date     string   `json:"date" toml:"date"`
	Months   []string `json:"months" toml:"months"`
	Decimal  string   `json:"decimal" toml:"decimal"`
}

// maxFileSize bounds one translation file.
const maxFileSize = 4 << 20

var (
	builtinOnce sync.Once
	builtinCat  *Catalog
)

// Builtin returns the catalogue of the built-in languages, English by
// default. It is loaded once and shared (a Catalog is immutable): engines
// and couriers without translation options all use it.
func Builtin() *Catalog {
	builtinOnce.Do(func() {
		c, err := Load(Options{})
		if err != nil {
			panic("locale: built-in translations: " + err.Error()) // tested
		}
		builtinCat = c
	})
	return builtinCat
}

// Load builds a catalogue: the built-in texts, the files of opts.Dir on
// top, the enabled languages and the default checked. Errors name the file
// and the key.
func Load(opts Options) (*Catalog, error) {
	raw := map[string][]*textSource{}
	for _, l := range BuiltinLanguages {
		b, err := builtinFS.ReadFile("builtin/" + l + ".json")
		if err != nil {
			return nil, fmt.Errorf("locale: built-in %s: %w", l, err)
		}
		tf, err := decodeFile("builtin:"+l+".json", b)
		if err != nil {
			return nil, err
		}
		raw[l] = append(raw[l], &textSource{origin: "builtin:" + l + ".json", builtin: true, file: tf})
	}
	mails := map[string][]*mailSource{}
	if opts.Dir != "" {
		if err := readDir(opts.Dir, raw, mails); err != nil {
			return nil, err
		}
	}

	c := &Catalog{bundles: map[string]*bundle{}, enabled: map[string]bool{}, known: map[string]string{}}
	// Formats first: a language's templates are parsed with its formats,
	// which a file may set or inherit.
	langs := make([]string, 0, len(raw)+len(mails))
	for l := range raw {
		langs = append(langs, l)
	}
	for l := range mails {
		if _, ok := raw[l]; !ok {
			langs = append(langs, l)
		}
	}
	sort.Strings(langs)
	for _, l := range langs {
		b := &bundle{lang: l, msgs: map[int]*msgTpl{}, pages: map[string]*pageStr{}, mail: map[string]*mailFile{}}
		if f, ok := builtinFormats[l]; ok {
			b.fmts = f
		}
		var nameFrom, fmtsFrom string
		for _, src := range raw[l] {
			if src.file.Name != "" {
				if nameFrom != "" && !src.builtin {
					return nil, fmt.Errorf("locale: %s: name: also defined in %s", src.origin, nameFrom)
				}
				b.name = src.file.Name
				if !src.builtin {
					nameFrom = src.origin
				}
			}
			if ff := src.file.Formats; ff != nil {
				if fmtsFrom != "" {
					return nil, fmt.Errorf("locale: %s: formats: also defined in %s", src.origin, fmtsFrom)
				}
				f, err := ff.build()
				if err != nil {
					return nil, fmt.Errorf("locale: %s: %w", src.origin, err)
				}
				b.fmts, fmtsFrom = f, src.origin
			}
		}
		c.bundles[l] = b
	}
	for _, l := range langs {
		b := c.bundles[l]
		fm := c.formatsOf(l)
		for _, src := range raw[l] {
			if err := b.addTexts(src, fm); err != nil {
				return nil, err
			}
		}
		if err := b.addMail(mails[l]); err != nil {
			return nil, err
		}
		if b.name == "" {
			b.name = l
		}
	}
	if err := addBuiltinMail(c.bundles); err != nil {
		return nil, err
	}
	// Kratos's texts as the engine writes them: the built-in English, not
	// an override of it.
	for k, s := range englishPages() {
		if strings.HasPrefix(k, "kratos.") {
			c.known[s] = k
		}
	}

	def := English
	if opts.Default != "" {
		d, ok := Canonical(opts.Default)
		if !ok {
			return nil, fmt.Errorf("locale: default language %q is not a language tag", opts.Default)
		}
		def = d
	}
	want := opts.Languages
	if len(want) == 0 {
		want = append(append([]string(nil), BuiltinLanguages...), langs...)
	}
	add := func(l string) {
		if !c.enabled[l] {
			c.enabled[l] = true
			c.langs = append(c.langs, l)
		}
	}
	add(def)
	for _, w := range want {
		l, ok := Canonical(w)
		if !ok {
			return nil, fmt.Errorf("locale: %q is not a language tag", w)
		}
		add(l)
	}
	for _, l := range c.langs {
		if _, ok := c.bundles[l]; !ok {
			where := "no built-in translation"
			if opts.Dir != "" {
				where += " and no file for it in " + opts.Dir
			}
			return nil, fmt.Errorf("locale: language %q: %s (built-in: %s)", l, where, strings.Join(BuiltinLanguages, ", "))
		}
	}
	c.def = def
	return c, nil
}

// textSource is one decoded file of one language.
type textSource struct {
	origin  string
	builtin bool
	file    *textFile
}

func (ff *fileFormats) build() (*formats, error) {
	f := &formats{DateTime: ff.DateTime, Date: ff.Date, Decimal: ff.Decimal}
	if len(ff.Months) != 12 {
		return nil, fmt.Errorf("formats: months: want 12 names, got %d", len(ff.Months))
	}
	copy(f.Months[:], ff.Months)
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// formatsOf: the language's formats, else its parent's, else English's.
func (c *Catalog) formatsOf(lang string) *formats {
	for _, p := range parents(lang) {
		if b, ok := c.bundles[p]; ok && b.fmts != nil {
			return b.fmts
		}
		if f, ok := builtinFormats[p]; ok {
			return f
		}
	}
	return builtinFormats[English]
}

// decodeFile reads a JSON or TOML translation file (by its name), refusing
// unknown fields.
func decodeFile(name string, b []byte) (*textFile, error) {
	var tf textFile
	switch {
	case strings.HasSuffix(name, ".json"):
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tf); err != nil {
			return nil, fmt.Errorf("locale: %s: %w", name, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("locale: %s: data after the JSON object", name)
		}
	case strings.HasSuffix(name, ".toml"):
		md, err := toml.Decode(string(b), &tf)
		if err != nil {
			return nil, fmt.Errorf("locale: %s: %w", name, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return nil, fmt.Errorf("locale: %s: unknown key %q", name, und[0].String())
		}
	default:
		return nil, fmt.Errorf("locale: %s: not a .json or .toml file", name)
	}
	return &tf, nil
}

// readDir reads the translations directory:
//
//	<dir>/<lang>.json or <lang>.toml         texts of <lang>
//	<dir>/<lang>/*.json or *.toml            more texts of <lang>
//	<dir>/<lang>/mail/<template>/<variant>/email.subject.gotmpl,
//	    email.body.gotmpl, email.body.plaintext.gotmpl
//
// Dotfiles, *.md and *.txt are skipped; anything else is an error, so a
// misnamed file does not go unnoticed.
func readDir(dir string, raw map[string][]*textSource, mails map[string][]*mailSource) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("locale: translations directory: %w", err)
	}
	readText := func(lang, path string) error {
		b, err := readLimited(path)
		if err != nil {
			return err
		}
		tf, err := decodeFile(path, b)
		if err != nil {
			return err
		}
		raw[lang] = append(raw[lang], &textSource{origin: path, file: tf})
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if skipName(name) {
			continue
		}
		if e.IsDir() {
			lang, ok := langOfName(name)
			if !ok {
				return fmt.Errorf("locale: %s: the directory name is not a language tag", path)
			}
			sub, err := os.ReadDir(path)
			if err != nil {
				return fmt.Errorf("locale: %w", err)
			}
			for _, s := range sub {
				sp := filepath.Join(path, s.Name())
				switch {
				case skipName(s.Name()):
				case s.IsDir() && s.Name() == "mail":
					ms, err := readMailDir(sp)
					if err != nil {
						return err
					}
					mails[lang] = append(mails[lang], ms...)
				case !s.IsDir() && (strings.HasSuffix(s.Name(), ".json") || strings.HasSuffix(s.Name(), ".toml")):
					if err := readText(lang, sp); err != nil {
						return err
					}
				default:
					return fmt.Errorf("locale: %s: unexpected (want *.json, *.toml or mail/)", sp)
				}
			}
			continue
		}
		ext := filepath.Ext(name)
		if ext != ".json" && ext != ".toml" {
			return fmt.Errorf("locale: %s: unexpected (want <language>.json, <language>.toml or a <language>/ directory)", path)
		}
		lang, ok := langOfName(strings.TrimSuffix(name, ext))
		if !ok {
			return fmt.Errorf("locale: %s: the file name is not a language tag", path)
		}
		if err := readText(lang, path); err != nil {
			return err
		}
	}
	return nil
}

func skipName(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".md") || strings.HasSuffix(name, ".txt")
}

func langOfName(name string) (string, bool) {
	if name == "*" {
		return "", false
	}
	return Canonical(name)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- translations_dir is operator configuration
	if err != nil {
		return nil, fmt.Errorf("locale: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("locale: %s: %w", path, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("locale: %s: larger than %d bytes", path, maxFileSize)
	}
	return b, nil
}

// addTexts checks and compiles the texts of one file into the bundle. A
// key defined by two files of the same language is an error; a file
// overrides the built-in text.
func (b *bundle) addTexts(src *textSource, fm *formats) error {
	ids := make([]string, 0, len(src.file.Messages))
	for k := range src.file.Messages {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	for _, k := range ids {
		v := src.file.Messages[k]
		id, err := strconv.Atoi(k)
		info, known := messageInfo[id]
		if err != nil || !known || strconv.Itoa(id) != k {
			return fmt.Errorf("locale: %s: messages[%q]: unknown message id", src.origin, k)
		}
		if prev, ok := b.msgs[id]; ok && !prev.builtin {
			return fmt.Errorf("locale: %s: messages[%q]: also defined in %s", src.origin, k, prev.origin)
		}
		t, err := compileMessage(id, info, v, fm)
		if err != nil {
			return fmt.Errorf("locale: %s: messages[%q]: %w", src.origin, k, err)
		}
		t.origin, t.builtin = src.origin, src.builtin
		t.stock = src.builtin && b.lang == English
		b.msgs[id] = t
	}
	keys := make([]string, 0, len(src.file.Pages))
	for k := range src.file.Pages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := src.file.Pages[k]
		if !src.builtin {
			ref, ok := englishPages()[k]
			if !ok {
				return fmt.Errorf("locale: %s: pages[%q]: unknown page key", src.origin, k)
			}
			if err := checkVerbs(v, ref, false); err != nil {
				return fmt.Errorf("locale: %s: pages[%q]: %w", src.origin, k, err)
			}
			if prev, ok := b.pages[k]; ok && !prev.builtin {
				return fmt.Errorf("locale: %s: pages[%q]: also defined in %s", src.origin, k, prev.origin)
			}
		}
		b.pages[k] = &pageStr{s: v, origin: src.origin, builtin: src.builtin}
	}
	return nil
}

// englishPages is the built-in English page map (the reference of keys and
// verbs for files).
func englishPages() map[string]string {
	englishOnce.Do(func() {
		b, err := builtinFS.ReadFile("builtin/en.json")
		if err == nil {
			var tf textFile
			if err = json.Unmarshal(b, &tf); err == nil {
				englishPageMap = tf.Pages
			}
		}
		if englishPageMap == nil {
			englishPageMap = map[string]string{}
		}
	})
	return englishPageMap
}

// compileMessage parses a message template of id and tries it on sample
// values, so that a broken text stops the start rather than a page.
func compileMessage(id int, info MessageInfo, src string, fm *formats) (*msgTpl, error) {
	t, err := template.New(strconv.Itoa(id)).Option("missingkey=error").Funcs(messageFuncs(fm, nil)).Parse(src)
	if err != nil {
		return nil, err
	}
	fields, funcs := templateRefs(t.Tree)
	allowed := map[string]bool{}
	for _, v := range info.Vars() {
		allowed[v] = true
	}
	for _, f := range fields {
		if !allowed[f] {
			return nil, fmt.Errorf("unknown variable {{.%s}} (this message has: %s)", f, strings.Join(info.Vars(), ", "))
		}
	}
	mt := &msgTpl{src: src, tpl: t, usesZone: funcs["datetime"] || funcs["date"]}
	var buf bytes.Buffer
	if err := t.Execute(&buf, sampleVars(info)); err != nil {
		return nil, err
	}
	return mt, nil
}

// templateRefs returns the root variables a template reads ({{.x}},
// {{$.x}}; not fields of a value that range/with made the dot) and the
// functions it calls.
func templateRefs(tree *parse.Tree) (fields []string, funcs map[string]bool) {
	seen := map[string]bool{}
	funcs = map[string]bool{}
	addField := func(name string) {
		if !seen[name] {
			seen[name] = true
			fields = append(fields, name)
		}
	}
	var walk func(n parse.Node, rootDot bool)
	walkPipe := func(p *parse.PipeNode, rootDot bool) {
		if p == nil {
			return
		}
		for _, c := range p.Cmds {
			for _, a := range c.Args {
				walk(a, rootDot)
			}
		}
	}
	walk = func(n parse.Node, rootDot bool) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c, rootDot)
			}
		case *parse.ActionNode:
			walkPipe(x.Pipe, rootDot)
		case *parse.FieldNode:
			if rootDot && len(x.Ident) > 0 {
				addField(x.Ident[0])
			}
		case *parse.VariableNode:
			if len(x.Ident) > 1 && x.Ident[0] == "$" {
				addField(x.Ident[1])
			}
		case *parse.ChainNode:
			walk(x.Node, rootDot)
		case *parse.PipeNode:
			walkPipe(x, rootDot)
		case *parse.IdentifierNode:
			funcs[x.Ident] = true
		case *parse.IfNode:
			walkPipe(x.Pipe, rootDot)
			walk(x.List, rootDot)
			walk(x.ElseList, rootDot)
		case *parse.RangeNode:
			walkPipe(x.Pipe, rootDot)
			walk(x.List, false)
			walk(x.ElseList, rootDot)
		case *parse.WithNode:
			walkPipe(x.Pipe, rootDot)
			walk(x.List, false)
			walk(x.ElseList, rootDot)
		case *parse.TemplateNode:
			walkPipe(x.Pipe, rootDot)
		}
	}
	if tree != nil {
		walk(tree.Root, true)
	}
	sort.Strings(fields)
	return fields, funcs
}

// verb matches a fmt verb of a page string: %s, %d, %[2]s, %%.
var verb = regexp.MustCompile(`%(\[(\d+)\])?([-+# 0]*\d*(\.\d+)?)([a-zA-Z%])`)

// verbsOf maps argument index (1-based) to verb letter.
func verbsOf(s string) (map[int]byte, error) {
	out := map[int]byte{}
	next := 1
	for _, m := range verb.FindAllStringSubmatch(s, -1) {
		if m[5] == "%" {
			continue
		}
		idx := next
		if m[2] != "" {
			n, err := strconv.Atoi(m[2])
			if err != nil || n < 1 || n > 9 {
				return nil, fmt.Errorf("bad argument index in %q", m[0])
			}
			idx = n
		}
		next = idx + 1
		v := m[5][0]
		if prev, ok := out[idx]; ok && prev != v {
			return nil, fmt.Errorf("argument %d used as %%%c and %%%c", idx, prev, v)
		}
		out[idx] = v
	}
	return out, nil
}

// checkVerbs compares a page string's verbs with the English string's:
// exact (the same arguments with the same verbs) for shipped translations,
// a subset (an override may leave an argument out) for files.
func checkVerbs(s, ref string, exact bool) error {
	got, err := verbsOf(s)
	if err != nil {
		return err
	}
	want, err := verbsOf(ref)
	if err != nil {
		return err
	}
	for i, v := range got {
		w, ok := want[i]
		if !ok {
			return fmt.Errorf("argument %d (%%%c) does not exist; the English text is %q", i, v, ref)
		}
		if v != w && v != 'v' {
			return fmt.Errorf("argument %d is %%%c in English, not %%%c", i, w, v)
		}
	}
	if exact {
		for i, w := range want {
			if got[i] != w {
				return fmt.Errorf("argument %d (%%%c) is missing; the English text is %q", i, w, ref)
			}
		}
	}
	return nil
}

// walkFS lists the files under root of fsys (for the embedded mail).
func walkFS(fsys fs.FS, root string) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// --- queries ---

// Default returns the default language.
func (c *Catalog) Default() string { return c.def }

// Language is an enabled language with its name in itself (for a picker).
type Language struct {
	Tag  string
	Name string
}

// Languages returns the enabled languages, the default first.
func (c *Catalog) Languages() []Language {
	out := make([]Language, len(c.langs))
	for i, l := range c.langs {
		out[i] = Language{Tag: l, Name: c.bundles[l].name}
	}
	return out
}

// chain is the lookup order of lang: itself, its truncations, English.
func (c *Catalog) chain(lang string) []*bundle {
	var out []*bundle
	for _, p := range parents(lang) {
		if b, ok := c.bundles[p]; ok {
			out = append(out, b)
		}
	}
	if lang != English && !strings.HasPrefix(lang, English+"-") {
		out = append(out, c.bundles[English])
	}
	return out
}

// Gaps returns, per enabled language, the message ids and page keys it
// has no text for (English is used for them): empty for the built-in
// languages, the list to translate for one added by files. A caller logs
// them at start.
func (c *Catalog) Gaps() map[string][]string {
	out := map[string][]string{}
	en := c.bundles[English]
	for _, l := range c.langs {
		if l == English {
			continue
		}
		ch := c.chain(l)
		ch = ch[:len(ch)-1] // without English
		var miss []string
		for _, id := range MessageIDs() {
			if !hasMsg(ch, id) {
				miss = append(miss, "messages."+strconv.Itoa(id))
			}
		}
		keys := make([]string, 0, len(en.pages))
		for k := range en.pages {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !hasPage(ch, k) {
				miss = append(miss, "pages."+k)
			}
		}
		for _, id := range MailTemplateIDs() {
			for _, f := range mailFileNames {
				if !hasMail(ch, id+"/"+f) {
					miss = append(miss, "mail."+id+"/"+f)
				}
			}
		}
		if len(miss) > 0 {
			out[l] = miss
		}
	}
	return out
}

func hasMsg(ch []*bundle, id int) bool {
	for _, b := range ch {
		if _, ok := b.msgs[id]; ok {
			return true
		}
	}
	return false
}

func hasPage(ch []*bundle, k string) bool {
	for _, b := range ch {
		if _, ok := b.pages[k]; ok {
			return true
		}
	}
	return false
}

func hasMail(ch []*bundle, k string) bool {
	for _, b := range ch {
		if _, ok := b.mail[k]; ok {
			return true
		}
	}
	return false
}
