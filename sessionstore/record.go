package sessionstore

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// The compact cache (internal/cache.Compact) keeps sessions and shared
// identities as records in this binary form, about half their JSON, which
// decodes without JSON into few heap objects: all strings of a record are
// substrings of one string, all byte fields slices of one byte slice.
//
// Layout: a format byte, the length of the byte region (uint32), the
// fields in order, then the byte region holding the byte fields' contents.
// Fields:
//
//   - strings: uvarint 2n and n bytes, or uvarint 1 and the 16 bytes of a
//     canonical lower-case UUID (ids are UUIDs: 36 characters become 16);
//   - times: a tag byte: timeSame (the previous time of the record),
//     timeZero, timeUTC (zig-zag varint seconds after the previous time,
//     uvarint nanoseconds), or the length of time.Time's binary form
//     followed by it (other zones, which it restores the way JSON decoding
//     does);
//   - slices and maps: uvarint n+1, 0 for nil;
//   - byte fields: uvarint n+2, 0 for nil, 1 for the record's key (a
//     session's token hash, which is the cache key already).
const recordFormat = 3

const (
	timeSame = 0
	timeZero = 1
	timeUTC  = 2
)

var errBadRecord = errors.New("sessionstore: malformed cache record")

type recordWriter struct {
	b     []byte // the record
	bytes []byte // the byte region, appended at the end
	key   []byte // the record's key (byte fields equal to it are not stored)
	prev  time.Time
	// failed: a value has no record form (a time whose zone offset
	// time.Time cannot encode); the record is not cached.
	failed bool
}

func (w *recordWriter) begin(dst, key []byte) {
	w.b = append(dst, recordFormat, 0, 0, 0, 0)
	w.bytes = w.bytes[:0]
	w.key = key
	w.prev = time.Time{}
	w.failed = false
}

// end appends the byte region and returns the record, which started at
// start in w.b; false when it cannot be cached.
func (w *recordWriter) end(start int) ([]byte, bool) {
	binary.LittleEndian.PutUint32(w.b[start+1:], uint32(len(w.bytes))) // #nosec G115 -- records are far below 4 GiB
	w.b = append(w.b, w.bytes...)
	w.key = nil
	return w.b, !w.failed
}

func (w *recordWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

func (w *recordWriter) str(s string) {
	if isUUID(s) {
		w.b = append(w.b, 1)
		for _, part := range [...]string{s[0:8], s[9:13], s[14:18], s[19:23], s[24:36]} {
			for i := 0; i < len(part); i += 2 {
				w.b = append(w.b, unhex(part[i])<<4|unhex(part[i+1]))
			}
		}
		return
	}
	w.uvarint(uint64(len(s)) << 1)
	w.b = append(w.b, s...)
}

// isUUID reports whether s is a canonical lower-case UUID, which
// formatUUID gives back byte for byte.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// unhex is the value of a lower-case hex digit (isUUID checked it).
func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

func appendUUID(dst, u []byte) []byte {
	dst = hex.AppendEncode(dst, u[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, u[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, u[10:16])
}

func (w *recordWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *recordWriter) time(t time.Time) {
	switch {
	case t == w.prev: // the same instant, zone and (no) monotonic reading
		w.b = append(w.b, timeSame)
		return
	case t.IsZero() && t.Location() == time.UTC:
		w.b = append(w.b, timeZero)
	case t.Location() == time.UTC && t == t.Round(0):
		w.b = append(w.b, timeUTC)
		w.b = binary.AppendVarint(w.b, t.Unix()-w.prev.Unix())
		w.uvarint(uint64(t.Nanosecond())) // #nosec G115 -- 0 <= ns < 1e9
	default:
		at := len(w.b)
		b, err := t.AppendBinary(append(w.b, 0))
		if err != nil {
			w.failed = true
			w.b = append(w.b, timeZero)
			return
		}
		w.b = b
		w.b[at] = byte(len(w.b) - at - 1) // #nosec G115 -- time's binary form is 15 or 16 bytes
	}
	w.prev = t
}

// count writes a slice's or map's length, n+1, or 0 for nil.
func (w *recordWriter) count(n int, isNil bool) {
	if isNil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(n) + 1) // #nosec G115 -- n >= 0
}

func (w *recordWriter) raw(b []byte) {
	switch {
	case b == nil:
		w.uvarint(0)
	case len(w.key) > 0 && string(b) == string(w.key):
		w.uvarint(1)
	default:
		w.uvarint(uint64(len(b)) + 2)
		w.bytes = append(w.bytes, b...)
	}
}

func (w *recordWriter) optStr(p *string) {
	if p == nil {
		w.b = append(w.b, 0)
		return
	}
	w.b = append(w.b, 1)
	w.str(*p)
}

// recordReader decodes a record. Strings are collected in text and
// assigned, as substrings of one string, by finish.
type recordReader struct {
	b     []byte // the fields
	off   int
	bytes []byte // the key, then the byte region (the reader's own copy)
	boff  int
	keyN  int
	prev  time.Time
	text  []byte
	refs  []stringRef
	bad   bool
}

type stringRef struct {
	p    *string
	a, b int
}

var recordReaders = sync.Pool{New: func() any {
	return &recordReader{text: make([]byte, 0, 512), refs: make([]stringRef, 0, 32)}
}}

func getRecordReader() *recordReader { return recordReaders.Get().(*recordReader) }

func (r *recordReader) release() {
	clear(r.refs) // drop the pointers into decoded values
	if cap(r.text) <= 64<<10 && cap(r.refs) <= 4096 {
		*r = recordReader{text: r.text[:0], refs: r.refs[:0]}
		recordReaders.Put(r)
	}
}

func (r *recordReader) begin(rec, key []byte) bool {
	r.off, r.boff, r.bad, r.prev = 0, 0, false, time.Time{}
	r.text, r.refs, r.bytes = r.text[:0], r.refs[:0], nil
	if len(rec) < 5 || rec[0] != recordFormat {
		return false
	}
	n := int(binary.LittleEndian.Uint32(rec[1:]))
	if n > len(rec)-5 {
		return false
	}
	r.b = rec[5 : len(rec)-n]
	if n+len(key) > 0 {
		r.bytes = make([]byte, len(key)+n)
		copy(r.bytes, key)
		copy(r.bytes[len(key):], rec[len(rec)-n:])
	}
	r.keyN, r.boff = len(key), len(key)
	return true
}

// finish assigns the strings read; false if the record was not read whole
// and well.
func (r *recordReader) finish() bool {
	if r.bad || r.off != len(r.b) || r.boff != len(r.bytes) {
		return false
	}
	all := string(r.text)
	for _, ref := range r.refs {
		*ref.p = all[ref.a:ref.b]
	}
	return true
}

func (r *recordReader) fail() {
	r.bad = true
	r.off = len(r.b)
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail()
		return 0
	}
	r.off += n
	return v
}

// strBytes reads a string's bytes: the record's own, or a UUID formatted
// into text (then from is its start there, else -1).
func (r *recordReader) strBytes() (b []byte, from int) {
	v := r.uvarint()
	if v == 1 {
		if len(r.b)-r.off < 16 {
			r.fail()
			return nil, -1
		}
		from = len(r.text)
		r.text = appendUUID(r.text, r.b[r.off:r.off+16])
		r.off += 16
		return r.text[from:], from
	}
	if v&1 != 0 || v>>1 > uint64(len(r.b)-r.off) { // #nosec G115 -- off <= len(b)
		r.fail()
		return nil, -1
	}
	n := int(v >> 1) // #nosec G115 -- bounded by the record length
	b = r.b[r.off : r.off+n]
	r.off += n
	return b, -1
}

// str reads a string into *p (assigned by finish).
func (r *recordReader) str(p *string) {
	b, from := r.strBytes()
	if r.bad {
		return
	}
	if s, ok := internBytes(b); ok {
		if from >= 0 {
			r.text = r.text[:from]
		}
		*p = s
		return
	}
	if from < 0 {
		from = len(r.text)
		r.text = append(r.text, b...)
	}
	r.refs = append(r.refs, stringRef{p, from, len(r.text)})
}

// strNow reads a string that is needed at once (a map key).
func (r *recordReader) strNow() string {
	b, from := r.strBytes()
	if s, ok := internBytes(b); ok {
		return s
	}
	s := string(b)
	if from >= 0 {
		r.text = r.text[:from]
	}
	return s
}

func (r *recordReader) boolean() bool {
	if r.off >= len(r.b) {
		r.fail()
		return false
	}
	v := r.b[r.off] == 1
	r.off++
	return v
}

func (r *recordReader) time() time.Time {
	if r.off >= len(r.b) {
		r.fail()
		return time.Time{}
	}
	tag := int(r.b[r.off])
	r.off++
	var t time.Time
	switch tag {
	case timeSame:
		return r.prev
	case timeZero:
	case timeUTC:
		d, n := binary.Varint(r.b[r.off:])
		if n <= 0 {
			r.fail()
			return t
		}
		r.off += n
		ns := r.uvarint()
		if ns >= 1e9 {
			r.fail()
			return t
		}
		t = time.Unix(r.prev.Unix()+d, int64(ns)).UTC() // #nosec G115 -- checked above
	default:
		if tag > len(r.b)-r.off {
			r.fail()
			return t
		}
		if err := t.UnmarshalBinary(r.b[r.off : r.off+tag]); err != nil {
			r.bad = true
		}
		r.off += tag
	}
	r.prev = t
	return t
}

// count reads a slice's length and whether it is nil; each element takes
// at least min bytes of the record.
func (r *recordReader) count(min int) (int, bool) {
	v := r.uvarint()
	if v == 0 || r.bad {
		return 0, true
	}
	if rest := uint64(len(r.b) - r.off); v-1 > rest || (v-1)*uint64(min) > rest { // #nosec G115 -- min > 0
		r.fail()
		return 0, true
	}
	return int(v - 1), false // #nosec G115 -- bounded by the record length
}

func (r *recordReader) raw() []byte {
	v := r.uvarint()
	switch {
	case v == 0 || r.bad:
		return nil
	case v == 1:
		if r.keyN == 0 {
			r.fail()
			return nil
		}
		return r.bytes[:r.keyN:r.keyN]
	}
	if v-2 > uint64(len(r.bytes)-r.boff) { // #nosec G115 -- boff <= len(bytes)
		r.fail()
		return nil
	}
	n := int(v - 2) // #nosec G115 -- bounded by the record length
	if n == 0 {
		return []byte{} // empty, not nil
	}
	b := r.bytes[r.boff : r.boff+n : r.boff+n]
	r.boff += n
	return b
}

func (r *recordReader) optStr() *string {
	if !r.boolean() || r.bad {
		return nil
	}
	p := new(string)
	r.str(p)
	return p
}

// optTime writes a time that may be absent (nil).
func (w *recordWriter) optTime(t *time.Time) {
	w.boolean(t != nil)
	if t != nil {
		w.time(*t)
	}
}

func (r *recordReader) optTime() *time.Time {
	if !r.boolean() || r.bad {
		return nil
	}
	t := r.time()
	return &t
}

// writeList writes a slice: its count, then each element by write.
func writeList[E any](w *recordWriter, list []E, write func(*recordWriter, *E)) {
	w.count(len(list), list == nil)
	for i := range list {
		write(w, &list[i])
	}
}

// readList reads a slice of writeList; each element takes at least min
// bytes of the record.
func readList[E any](r *recordReader, min int, read func(*recordReader, *E)) []E {
	n, isNil := r.count(min)
	if isNil {
		return nil
	}
	list := make([]E, n)
	for i := range list {
		read(r, &list[i])
	}
	return list
}

// appendRecord appends the record of v (its fields written by write) to
// dst; key is the record's key (nil: none). False when v has no record
// form (see recordWriter.failed).
func appendRecord[T any](w *recordWriter, dst, key []byte, v *T, write func(*recordWriter, *T)) ([]byte, bool) {
	start := len(dst)
	w.begin(dst, key)
	write(w, v)
	return w.end(start)
}

// decodeRecord decodes a record of appendRecord made with the same key
// (its fields read by read).
func decodeRecord[T any](rec, key []byte, read func(*recordReader, *T)) (*T, error) {
	r := getRecordReader()
	defer r.release()
	if !r.begin(rec, key) {
		return nil, errBadRecord
	}
	v := new(T)
	read(r, v)
	if !r.finish() {
		return nil, errBadRecord
	}
	return v, nil
}

// appendSessionRecord appends sess's record to dst. key is the cache key
// (its token hash; nil: none).
func appendSessionRecord(w *recordWriter, dst, key []byte, sess *Session) ([]byte, bool) {
	return appendRecord(w, dst, key, sess, writeSessionFields)
}

func decodeSessionRecord(rec, key []byte) (*Session, error) {
	return decodeRecord(rec, key, readSessionFields)
}

// appendIdentityRecord appends the record of a shared identity (see
// sharedIdentity) to dst.
func appendIdentityRecord(w *recordWriter, dst []byte, id *Identity) ([]byte, bool) {
	return appendRecord(w, dst, nil, id, writeIdentityFields)
}

func decodeIdentityRecord(rec []byte) (*Identity, error) {
	return decodeRecord(rec, nil, readIdentityFields)
}

// The write and read functions below list each type's fields in record
// order. Their lines look alike (and like each other's) by shape only:
// each is the field list of one type, which a generic field walker would
// only hide behind an indirect call per field on the cache's hot path.

func writeSessionFields(w *recordWriter, s *Session) {
	w.str(s.ID)
	w.str(s.IdentityID)
	w.boolean(s.Active)
	w.time(s.IssuedAt)
	w.time(s.AuthenticatedAt)
	w.time(s.ExpiresAt)
	w.str(s.AAL)
	writeList(w, s.AuthenticationMethods, func(w *recordWriter, m *AuthMethod) {
		w.str(m.Method)
		w.str(m.AAL)
		w.time(m.CompletedAt)
		w.str(m.Provider)
	})
	writeList(w, s.Devices, func(w *recordWriter, d *Device) {
		w.str(d.ID)
		w.optStr(d.IPAddress)
		w.optStr(d.UserAgent)
		w.str(d.Location)
	})
	w.raw(s.TokenHash)
	w.raw(s.LogoutTokenHash)
}

func readSessionFields(r *recordReader, s *Session) {
	r.str(&s.ID)
	r.str(&s.IdentityID)
	s.Active = r.boolean()
	s.IssuedAt = r.time()
	s.AuthenticatedAt = r.time()
	s.ExpiresAt = r.time()
	r.str(&s.AAL)
	s.AuthenticationMethods = readList(r, 4, func(r *recordReader, m *AuthMethod) {
		r.str(&m.Method)
		r.str(&m.AAL)
		m.CompletedAt = r.time()
		r.str(&m.Provider)
	})
	s.Devices = readList(r, 4, func(r *recordReader, d *Device) {
		r.str(&d.ID)
		d.IPAddress = r.optStr()
		d.UserAgent = r.optStr()
		r.str(&d.Location)
	})
	s.TokenHash = r.raw()
	s.LogoutTokenHash = r.raw()
}

func writeIdentityFields(w *recordWriter, id *Identity) {
	w.str(id.ID)
	w.str(id.SchemaID)
	w.str(id.State)
	w.time(id.CreatedAt)
	w.time(id.UpdatedAt)
	w.time(id.StateChangedAt)
	w.raw(id.Traits)
	writeList(w, id.VerifiableAddresses, func(w *recordWriter, a *VerifiableAddress) {
		w.str(a.ID)
		w.str(a.Value)
		w.boolean(a.Verified)
		w.str(a.Via)
		w.str(a.Status)
		w.optTime(a.VerifiedAt)
		w.time(a.CreatedAt)
		w.time(a.UpdatedAt)
	})
	writeList(w, id.RecoveryAddresses, func(w *recordWriter, a *RecoveryAddress) {
		w.str(a.ID)
		w.str(a.Value)
		w.str(a.Via)
		w.time(a.CreatedAt)
		w.time(a.UpdatedAt)
	})
	w.raw(id.MetadataPublic)
	w.raw(id.MetadataAdmin)
	w.count(len(id.Credentials), id.Credentials == nil)
	for _, t := range slices.Sorted(maps.Keys(id.Credentials)) {
		c := id.Credentials[t]
		w.str(t)
		w.str(c.Type)
		writeList(w, c.Identifiers, func(w *recordWriter, s *string) { w.str(*s) })
		w.raw(c.Config)
		w.uvarint(uint64(int64(c.Version))) // #nosec G115 -- read back as int64
		w.time(c.CreatedAt)
		w.time(c.UpdatedAt)
	}
	w.uvarint(id.Version)
	w.boolean(id.trimmed)
}

func readIdentityFields(r *recordReader, id *Identity) {
	r.str(&id.ID)
	r.str(&id.SchemaID)
	r.str(&id.State)
	id.CreatedAt = r.time()
	id.UpdatedAt = r.time()
	id.StateChangedAt = r.time()
	id.Traits = r.raw()
	id.VerifiableAddresses = readList(r, 8, func(r *recordReader, a *VerifiableAddress) {
		r.str(&a.ID)
		r.str(&a.Value)
		a.Verified = r.boolean()
		r.str(&a.Via)
		r.str(&a.Status)
		a.VerifiedAt = r.optTime()
		a.CreatedAt = r.time()
		a.UpdatedAt = r.time()
	})
	id.RecoveryAddresses = readList(r, 5, func(r *recordReader, a *RecoveryAddress) {
		r.str(&a.ID)
		r.str(&a.Value)
		r.str(&a.Via)
		a.CreatedAt = r.time()
		a.UpdatedAt = r.time()
	})
	id.MetadataPublic = r.raw()
	id.MetadataAdmin = r.raw()
	if n, isNil := r.count(7); !isNil {
		id.Credentials = make(map[string]Credential, n)
		for range n {
			// The map holds copies: strings read into them are needed at
			// once (strNow), not assigned by finish.
			t := r.strNow()
			c := Credential{Type: r.strNow()}
			c.Identifiers = readList(r, 1, func(r *recordReader, s *string) { *s = r.strNow() })
			c.Config = r.raw()
			c.Version = int(int64(r.uvarint())) // #nosec G115 -- written from an int
			c.CreatedAt = r.time()
			c.UpdatedAt = r.time()
			if r.bad {
				break
			}
			id.Credentials[t] = c
		}
	}
	id.Version = r.uvarint()
	id.trimmed = r.boolean()
}
