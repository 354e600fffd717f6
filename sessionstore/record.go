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
const recordFormat = 2

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

// appendSessionRecord appends sess's record to dst. key is the cache key
// (its token hash; nil: none). False when the session has no record form
// (see recordWriter.failed).
func appendSessionRecord(w *recordWriter, dst, key []byte, sess *Session) ([]byte, bool) {
	start := len(dst)
	w.begin(dst, key)
	w.str(sess.ID)
	w.str(sess.IdentityID)
	w.boolean(sess.Active)
	w.time(sess.IssuedAt)
	w.time(sess.AuthenticatedAt)
	w.time(sess.ExpiresAt)
	w.str(sess.AAL)
	w.count(len(sess.AuthenticationMethods), sess.AuthenticationMethods == nil)
	for _, m := range sess.AuthenticationMethods {
		w.str(m.Method)
		w.str(m.AAL)
		w.time(m.CompletedAt)
	}
	w.count(len(sess.Devices), sess.Devices == nil)
	for _, d := range sess.Devices {
		w.str(d.ID)
		w.optStr(d.IPAddress)
		w.optStr(d.UserAgent)
		w.str(d.Location)
	}
	w.raw(sess.TokenHash)
	w.raw(sess.LogoutTokenHash)
	return w.end(start)
}

// decodeSessionRecord decodes a record of appendSessionRecord made with
// the same key.
func decodeSessionRecord(rec, key []byte) (*Session, error) {
	r := getRecordReader()
	defer r.release()
	if !r.begin(rec, key) {
		return nil, errBadRecord
	}
	s := new(Session)
	r.str(&s.ID)
	r.str(&s.IdentityID)
	s.Active = r.boolean()
	s.IssuedAt = r.time()
	s.AuthenticatedAt = r.time()
	s.ExpiresAt = r.time()
	r.str(&s.AAL)
	if n, isNil := r.count(3); !isNil {
		s.AuthenticationMethods = make([]AuthMethod, n)
		for i := range s.AuthenticationMethods {
			m := &s.AuthenticationMethods[i]
			r.str(&m.Method)
			r.str(&m.AAL)
			m.CompletedAt = r.time()
		}
	}
	if n, isNil := r.count(4); !isNil {
		s.Devices = make([]Device, n)
		for i := range s.Devices {
			d := &s.Devices[i]
			r.str(&d.ID)
			d.IPAddress = r.optStr()
			d.UserAgent = r.optStr()
			r.str(&d.Location)
		}
	}
	s.TokenHash = r.raw()
	s.LogoutTokenHash = r.raw()
	if !r.finish() {
		return nil, errBadRecord
	}
	return s, nil
}

// appendIdentityRecord appends the record of a shared identity (see
// sharedIdentity) to dst; false when it has none.
func appendIdentityRecord(w *recordWriter, dst []byte, id *Identity) ([]byte, bool) {
	start := len(dst)
	w.begin(dst, nil)
	w.str(id.ID)
	w.str(id.SchemaID)
	w.str(id.State)
	w.time(id.CreatedAt)
	w.time(id.UpdatedAt)
	w.time(id.StateChangedAt)
	w.raw(id.Traits)
	w.count(len(id.VerifiableAddresses), id.VerifiableAddresses == nil)
	for _, a := range id.VerifiableAddresses {
		w.str(a.ID)
		w.str(a.Value)
		w.boolean(a.Verified)
		w.str(a.Via)
		w.str(a.Status)
		if a.VerifiedAt == nil {
			w.boolean(false)
		} else {
			w.boolean(true)
			w.time(*a.VerifiedAt)
		}
		w.time(a.CreatedAt)
		w.time(a.UpdatedAt)
	}
	w.count(len(id.RecoveryAddresses), id.RecoveryAddresses == nil)
	for _, a := range id.RecoveryAddresses {
		w.str(a.ID)
		w.str(a.Value)
		w.str(a.Via)
		w.time(a.CreatedAt)
		w.time(a.UpdatedAt)
	}
	w.raw(id.MetadataPublic)
	w.raw(id.MetadataAdmin)
	w.count(len(id.Credentials), id.Credentials == nil)
	for _, t := range slices.Sorted(maps.Keys(id.Credentials)) {
		c := id.Credentials[t]
		w.str(t)
		w.str(c.Type)
		w.count(len(c.Identifiers), c.Identifiers == nil)
		for _, s := range c.Identifiers {
			w.str(s)
		}
		w.raw(c.Config)
		w.uvarint(uint64(int64(c.Version))) // #nosec G115 -- read back as int64
		w.time(c.CreatedAt)
		w.time(c.UpdatedAt)
	}
	w.uvarint(id.Version)
	w.boolean(id.trimmed)
	return w.end(start)
}

// decodeIdentityRecord decodes a record of appendIdentityRecord.
func decodeIdentityRecord(rec []byte) (*Identity, error) {
	r := getRecordReader()
	defer r.release()
	if !r.begin(rec, nil) {
		return nil, errBadRecord
	}
	id := new(Identity)
	r.str(&id.ID)
	r.str(&id.SchemaID)
	r.str(&id.State)
	id.CreatedAt = r.time()
	id.UpdatedAt = r.time()
	id.StateChangedAt = r.time()
	id.Traits = r.raw()
	if n, isNil := r.count(8); !isNil {
		id.VerifiableAddresses = make([]VerifiableAddress, n)
		for i := range id.VerifiableAddresses {
			a := &id.VerifiableAddresses[i]
			r.str(&a.ID)
			r.str(&a.Value)
			a.Verified = r.boolean()
			r.str(&a.Via)
			r.str(&a.Status)
			if r.boolean() {
				t := r.time()
				a.VerifiedAt = &t
			}
			a.CreatedAt = r.time()
			a.UpdatedAt = r.time()
		}
	}
	if n, isNil := r.count(5); !isNil {
		id.RecoveryAddresses = make([]RecoveryAddress, n)
		for i := range id.RecoveryAddresses {
			a := &id.RecoveryAddresses[i]
			r.str(&a.ID)
			r.str(&a.Value)
			r.str(&a.Via)
			a.CreatedAt = r.time()
			a.UpdatedAt = r.time()
		}
	}
	id.MetadataPublic = r.raw()
	id.MetadataAdmin = r.raw()
	if n, isNil := r.count(7); !isNil {
		id.Credentials = make(map[string]Credential, n)
		for range n {
			t := r.strNow()
			c := Credential{Type: r.strNow()}
			if m, isNil := r.count(1); !isNil {
				c.Identifiers = make([]string, m)
				for i := range c.Identifiers {
					c.Identifiers[i] = r.strNow()
				}
			}
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
	if !r.finish() {
		return nil, errBadRecord
	}
	return id, nil
}
