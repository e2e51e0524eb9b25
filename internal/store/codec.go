package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
	"sync"
	"time"

	"github.com/rdd-project/rdd/internal/events"
)

// seqKey returns the 8-byte big-endian key of seq, so that byte order is
// sequence order and cursor Seek/Last work directly.
func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// keySeq decodes a key written by seqKey.
func keySeq(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// encodeEnvelope validates e, stamps it with seq and returns the bytes to
// store together with the envelope exactly as Range will return it later
// (time in UTC without a monotonic reading, payload compacted). The bytes are
// what events.Marshal writes for that envelope, produced without reflection;
// codec_test.go checks the equivalence. The caller's Data is not retained.
func encodeEnvelope(e events.Envelope, seq uint64) (events.Envelope, []byte, error) {
	if err := e.Validate(); err != nil {
		return events.Envelope{}, nil, err
	}
	e.Seq = seq
	e.Time = e.Time.UTC()
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return events.Envelope{}, nil, fmt.Errorf("%w: %s time %v is outside years 0-9999", events.ErrInvalidEnvelope, e.Type, e.Time)
	}
	b := make([]byte, 0, 96+len(e.Type)+len(e.Data))
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":"`...)
	b = append(b, e.Type...) // a known type: plain ASCII letters
	b = append(b, `","v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = append(b, `,"data":`...)
	start := len(b)
	b, err := appendCompact(b, e.Data)
	if err != nil {
		return events.Envelope{}, nil, fmt.Errorf("%w: %s payload: %v", events.ErrInvalidEnvelope, e.Type, err)
	}
	b = append(b, '}')
	if len(b) > events.MaxEncodedBytes {
		return events.Envelope{}, nil, fmt.Errorf("%w: %s is %d bytes encoded, above the limit of %d", events.ErrInvalidEnvelope, e.Type, len(b), events.MaxEncodedBytes)
	}
	e.Data = bytes.Clone(b[start : len(b)-1])
	return e, b, nil
}

// appendCompact appends data compacted and escaped as encoding/json.Marshal
// writes a json.RawMessage: insignificant space removed, '<', '>', '&',
// U+2028 and U+2029 escaped. It fails if data is not valid JSON.
func appendCompact(dst, data []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, data); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	body := out[len(dst):]
	if needsHTMLEscape(body) {
		var esc bytes.Buffer
		json.HTMLEscape(&esc, body)
		out = append(out[:len(dst)], esc.Bytes()...)
	}
	return out, nil
}

// decodeEnvelope decodes one stored value. Nothing in the result aliases b,
// so it may be called on bytes that are only valid inside a bbolt transaction.
//
// The common case (bytes written by encodeEnvelope) takes a fast path that
// checks the exact layout encoding/json produces and does not re-validate
// the payload's JSON syntax, which was checked when it was written; anything
// else goes through events.Unmarshal. Check validates every payload fully.
func decodeEnvelope(b []byte) (events.Envelope, error) {
	if e, ok := decodeFast(b); ok {
		if err := e.Validate(); err != nil {
			return events.Envelope{}, err
		}
		return e, nil
	}
	return events.Unmarshal(b)
}

// decodeValue verifies and decodes the value stored under seq.
func decodeValue(seq uint64, v []byte, strict bool) (events.Envelope, error) {
	body, _, err := unframe(seq, v)
	if err != nil {
		return events.Envelope{}, err
	}
	var e events.Envelope
	if strict {
		e, err = decodeStrict(body)
	} else {
		e, err = decodeEnvelope(body)
	}
	if err != nil {
		return events.Envelope{}, err
	}
	if e.Seq != seq {
		return events.Envelope{}, fmt.Errorf("the event under key %d says seq %d", seq, e.Seq)
	}
	return e, nil
}

// decodeStrict decodes b with encoding/json only (used by Check).
func decodeStrict(b []byte) (events.Envelope, error) {
	e, err := events.Unmarshal(b)
	if err != nil {
		return events.Envelope{}, err
	}
	if !json.Valid(e.Data) {
		return events.Envelope{}, fmt.Errorf("%w: payload is not valid JSON", events.ErrInvalidEnvelope)
	}
	return e, nil
}

// decodeFast parses `{"seq":N,"time":"RFC3339Z","type":"T","v":N,"data":{...}}`.
// It reports false whenever b deviates from that layout, leaving the decision
// to encoding/json.
func decodeFast(b []byte) (events.Envelope, bool) {
	var e events.Envelope
	rest, ok := bytes.CutPrefix(b, []byte(`{"seq":`))
	if !ok {
		return e, false
	}
	if e.Seq, rest, ok = cutUint(rest); !ok {
		return e, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"time":"`)); !ok {
		return e, false
	}
	ts, rest, ok := bytes.Cut(rest, []byte{'"'})
	if !ok {
		return e, false
	}
	if e.Time, ok = parseUTC(ts); !ok {
		return e, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"type":"`)); !ok {
		return e, false
	}
	typ, rest, ok := bytes.Cut(rest, []byte{'"'})
	if !ok {
		return e, false
	}
	for _, k := range events.KnownTypes {
		if string(typ) == string(k) {
			e.Type = k
			break
		}
	}
	if e.Type == "" {
		return e, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"v":`)); !ok {
		return e, false
	}
	v, rest, ok := cutUint(rest)
	if !ok || v > 1<<31 {
		return e, false
	}
	e.V = int(v)
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"data":`)); !ok {
		return e, false
	}
	// rest must be exactly the payload object and the envelope's closing brace.
	if n := len(rest); n < 3 || rest[n-1] != '}' || objectEnd(rest) != n-2 {
		return e, false
	}
	e.Data = bytes.Clone(rest[:len(rest)-1])
	return e, true
}

// needsHTMLEscape reports whether b holds '<', '>', '&' or the first byte of
// U+2028/U+2029 (a rare false positive only costs an escaping pass).
func needsHTMLEscape(b []byte) bool {
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return true
		}
	}
	return false
}

// objectEnd returns the index of the brace that closes the JSON object b
// starts with, -1 if b does not start with one. It tracks strings and nesting
// only; it does not validate the syntax in between.
func objectEnd(b []byte) int {
	if len(b) == 0 || b[0] != '{' {
		return -1
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i+1)
			if end < 0 {
				return -1
			}
			i = end
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				if b[i] == ']' {
					return -1
				}
				return i
			}
		}
	}
	return -1
}

// stringEnd returns the index of the quote that ends the JSON string whose
// contents start at b[from], -1 if there is none: the first quote preceded by
// an even number of backslashes.
func stringEnd(b []byte, from int) int {
	for {
		j := bytes.IndexByte(b[from:], '"')
		if j < 0 {
			return -1
		}
		q := from + j
		n := 0
		for k := q - 1; k >= from && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q
		}
		from = q + 1
	}
}

// cutUint parses a JSON unsigned integer (no sign, no leading zero, no
// exponent) at the start of b.
func cutUint(b []byte) (uint64, []byte, bool) {
	var n uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, nil, false
		}
		n = n*10 + d
	}
	if i == 0 || (i > 1 && b[0] == '0') {
		return 0, nil, false
	}
	return n, b[i:], true
}

// parseUTC parses the subset of RFC 3339 that time.Time.MarshalJSON writes for
// a UTC time: "2006-01-02T15:04:05[.fraction]Z" with 1-9 fraction digits and
// no trailing zero. It rejects what time.Parse would reject.
func parseUTC(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		digits := frac[1:]
		if frac[0] != '.' || len(digits) < 1 || len(digits) > 9 || digits[len(digits)-1] == '0' {
			return time.Time{}, false
		}
		n, ok := num(digits)
		if !ok {
			return time.Time{}, false
		}
		for i := len(digits); i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// Stored values (events and checkpoints) since schema version 2 are framed:
//
//	0x01 | CRC-32C (Castagnoli), big-endian, of key || body | body
//
// where key is the 8-byte seq key the value is stored under, so a value
// moved to another key fails too. A value that does not start with 0x01 is
// an unframed value of schema 1 (events are JSON, so they start with '{';
// rdd's checkpoints too) and is accepted as it is: logs written before
// checksums stay readable without a migration.
const (
	frameTag    = 0x01
	frameHeader = 5
)

// castagnoli is built on first use: every rdd command links the store, and
// building the table (hardware tables on amd64) costs ~0.25 ms of start-up.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// frame returns body framed for storage under key seq.
func frame(seq uint64, body []byte) []byte {
	out := make([]byte, frameHeader, frameHeader+len(body))
	out[0] = frameTag
	binary.BigEndian.PutUint32(out[1:], frameSum(seq, body))
	return append(out, body...)
}

func frameSum(seq uint64, body []byte) uint32 {
	k := seqKey(seq)
	t := castagnoli()
	return crc32.Update(crc32.Update(0, t, k), t, body)
}

// unframe verifies a stored value and returns its body, which aliases v.
// framed reports whether v carried a checksum.
func unframe(seq uint64, v []byte) (body []byte, framed bool, err error) {
	if len(v) == 0 || v[0] != frameTag {
		return v, false, nil
	}
	if len(v) < frameHeader {
		return nil, true, fmt.Errorf("value of %d bytes is shorter than its checksum header", len(v))
	}
	body = v[frameHeader:]
	if want, got := binary.BigEndian.Uint32(v[1:]), frameSum(seq, body); want != got {
		return nil, true, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return body, true, nil
}
