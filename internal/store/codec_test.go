package store_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/store/storetest"
)

// TestFastDecodeMatchesJSON: for everything Append writes, the fast decoder
// takes its fast path and agrees exactly with encoding/json.
func TestFastDecodeMatchesJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := storetest.GenEnvelope(false).Draw(t, "envelope")
		seq := rapid.Uint64Range(1, 1<<64-1).Draw(t, "seq")
		stored, b, err := store.EncodeEnvelope(in, seq)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := store.DecodeFast(b)
		if !ok {
			t.Fatalf("fast path refused %s", b)
		}
		slow, err := events.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(stored, slow) {
			t.Fatalf("fast %+v\nslow %+v\nstored %+v", fast, slow, stored)
		}
	})
}

// TestEncodeMatchesMarshal: the reflection-free encoder writes the bytes
// events.Marshal writes, for payloads with space, HTML characters, U+2028 and
// invalid UTF-8 in strings.
func TestEncodeMatchesMarshal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := storetest.GenEnvelope(false).Draw(t, "envelope")
		raw := rapid.SliceOf(rapid.Byte()).Draw(t, "raw")
		var str []byte
		for _, c := range raw {
			if c >= 0x20 && c != '"' && c != '\\' {
				str = append(str, c)
			}
		}
		str = append(str, rapid.SampledFrom([]string{"", "<&>", "\u2028\u2029", "\xff"}).Draw(t, "extra")...)
		in.Data = append(append([]byte(`{ "s" : "`), str...), `" , "t": [1, 2.5, null] , "u":{}}`...)
		seq := rapid.Uint64().Draw(t, "seq")
		stored, b, err := store.EncodeEnvelope(in, seq)
		if err != nil {
			t.Fatal(err)
		}
		in.Seq, in.Time = seq, in.Time.UTC()
		want, err := events.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(want) {
			t.Fatalf("encoded %s\nMarshal %s", b, want)
		}
		got, err := store.DecodeEnvelope(b)
		if err != nil || !reflect.DeepEqual(got, stored) {
			t.Fatalf("decoded %+v, %v\nreturned %+v", got, err, stored)
		}
	})
}

// FuzzDecode: whatever the bytes, when the fast path accepts a document that
// is valid JSON, encoding/json reads the same envelope from it. (The fast path
// does not re-check payload syntax; Check does.)
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"time":"2026-11-26T12:00:00.5Z","type":"Transition","v":1,"data":{"a":1}}`,
		`{"seq":18446744073709551615,"time":"0001-01-01T00:00:01Z","type":"Observed","v":1,"data":{}}`,
		`{"seq":01,"time":"2026-11-26T12:00:00Z","type":"Transition","v":1,"data":{}}`,
		`{"seq":1,"time":"2026-02-29T12:00:00Z","type":"Transition","v":1,"data":{}}`,
		`{"seq":1,"time":"2024-02-29T24:00:00Z","type":"Transition","v":1,"data":{}}`,
		`{"seq":1,"time":"2026-11-26T12:00:00.1234567890Z","type":"Transition","v":1,"data":{}}`,
		`{"seq":1,"time":"2026-11-26T12:00:00.10Z","type":"Transition","v":1,"data":{}}`,
		`{"seq":1,"time":"2026-11-26T12:00:00+01:00","type":"Transition","v":1,"data":{}}`,
		`{"seq":1,"time":"2026-11-26T12:00:00Z","type":"Tr\u0061nsition","v":1,"data":{}}`,
		`{"seq":1,"time":"2026-11-26T12:00:00Z","type":"Transition","v":1,"data":{"x":"}"}}`,
		`{"seq":1,"time":"2026-11-26T12:00:00Z","type":"Transition","v":1,"data":{}} `,
		`{"seq":1,"time":"2026-11-26T12:00:00Z","type":"Transition","v":1,"data":{},"data":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := store.DecodeFast(b)
		if !ok || !json.Valid(b) {
			return
		}
		slow, err := events.Unmarshal(b)
		if err != nil {
			if fast.Validate() == nil {
				t.Fatalf("fast path accepted %s, encoding/json: %v", b, err)
			}
			return
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s:\nfast %+v\nslow %+v", b, fast, slow)
		}
	})
}

// TestParseUTC: the fast time parser accepts what MarshalJSON writes for UTC
// times and never accepts what time.Parse would read differently.
func TestParseUTC(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := time.Unix(rapid.Int64Range(-62135596800, 253402300799).Draw(t, "sec"), rapid.Int64Range(0, 999999999).Draw(t, "nsec")).UTC()
		s := tm.Format(time.RFC3339Nano)
		got, ok := store.ParseUTC([]byte(s))
		if !ok || !reflect.DeepEqual(got, tm) {
			t.Fatalf("ParseUTC(%s) = %v %v, want %v", s, got, ok, tm)
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.StringMatching(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,10})?Z?`).Draw(t, "s")
		got, ok := store.ParseUTC([]byte(s))
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseUTC(%s) = %v, time.Parse = %v, %v", s, got, want, err)
		}
	})
}
