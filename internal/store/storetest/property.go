package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// GenEnvelope generates envelopes, valid or (when invalid is true, sometimes)
// not: any known type, times in any zone from 1970 to 2200, payloads with
// arbitrary strings.
func GenEnvelope(invalid bool) *rapid.Generator[events.Envelope] {
	return rapid.Custom(func(t *rapid.T) events.Envelope {
		zones := []*time.Location{time.UTC, time.FixedZone("A", -5*3600), time.FixedZone("B", 5*3600+1800)}
		e := events.Envelope{
			Seq:  rapid.Uint64().Draw(t, "seq"),
			Type: rapid.SampledFrom(events.KnownTypes).Draw(t, "type"),
			V:    events.CurrentVersion,
			Time: time.Unix(rapid.Int64Range(0, 7258118400).Draw(t, "sec"), rapid.Int64Range(0, 999999999).Draw(t, "nsec")).
				In(rapid.SampledFrom(zones).Draw(t, "zone")),
		}
		data, err := json.Marshal(map[string]any{
			"s": rapid.String().Draw(t, "s"),
			"n": rapid.Int64().Draw(t, "n"),
		})
		if err != nil {
			t.Fatal(err)
		}
		e.Data = data
		if invalid {
			switch rapid.IntRange(0, 9).Draw(t, "spoil") {
			case 0:
				e.Time = time.Time{}
			case 1:
				e.Type = events.Type(rapid.StringMatching(`[A-Za-z]{0,12}`).Draw(t, "badType"))
			case 2:
				e.V = rapid.SampledFrom([]int{0, -1, events.CurrentVersion + 1}).Draw(t, "badV")
			case 3:
				e.Data = json.RawMessage(rapid.SampledFrom([]string{"", "[]", "null", `"x"`, `{"a":`, `{"a" 1}`}).Draw(t, "badData"))
			}
		}
		return e
	})
}

// testProperty drives a log and a model with random appends (some of them
// invalid), ranges, gets and checkpoints: Range must return exactly what was
// appended, and a failed append must change nothing.
func testProperty(t *testing.T, newLog Factory) {
	rapid.Check(t, func(rt *rapid.T) {
		l := newLog(t)
		var model []events.Envelope
		var cps []uint64
		rt.Repeat(map[string]func(*rapid.T){
			"append": func(rt *rapid.T) {
				batch := rapid.SliceOfN(GenEnvelope(rapid.Bool().Draw(rt, "maybeInvalid")), 0, 8).Draw(rt, "batch")
				valid := true
				for _, e := range batch {
					valid = valid && e.Validate() == nil && json.Valid(e.Data)
				}
				out, err := l.Append(batch...)
				if !valid {
					if !errors.Is(err, events.ErrInvalidEnvelope) || out != nil {
						rt.Fatalf("invalid batch: Append = %v, %v", out, err)
					}
					return
				}
				if err != nil || len(out) != len(batch) {
					rt.Fatalf("Append(%d) = %d, %v", len(batch), len(out), err)
				}
				for i, e := range out {
					in := batch[i]
					if e.Seq != uint64(len(model)+1) || e.Type != in.Type || e.V != in.V ||
						!e.Time.Equal(in.Time) || e.Time.Location() != time.UTC || string(e.Data) != string(in.Data) {
						rt.Fatalf("stored %+v for %+v as seq %d", e, in, len(model)+1)
					}
					model = append(model, e)
				}
			},
			"range": func(rt *rapid.T) {
				since := rapid.Uint64Range(0, uint64(len(model)+2)).Draw(rt, "since")
				limit := rapid.IntRange(-1, len(model)+2).Draw(rt, "limit")
				got, err := Collect(l, since, limit)
				if err != nil {
					rt.Fatal(err)
				}
				want := model[min(since, uint64(len(model))):]
				if limit > 0 && limit < len(want) {
					want = want[:limit]
				}
				if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
					rt.Fatalf("Range(%d, %d) = %v, want %v", since, limit, seqs(got), seqs(want))
				}
			},
			"get": func(rt *rapid.T) {
				seq := rapid.Uint64Range(0, uint64(len(model)+1)).Draw(rt, "getSeq")
				got, err := l.Get(seq)
				switch {
				case seq == 0 || seq > uint64(len(model)):
					if !errors.Is(err, store.ErrNotFound) {
						rt.Fatalf("Get(%d) error = %v, want ErrNotFound", seq, err)
					}
				case err != nil || !reflect.DeepEqual(got, model[seq-1]):
					rt.Fatalf("Get(%d) = %+v, %v; want %+v", seq, got, err, model[seq-1])
				}
			},
			"checkpoint": func(rt *rapid.T) {
				if len(model) == 0 {
					rt.Skip("no events yet")
				}
				seq := rapid.Uint64Range(1, uint64(len(model))).Draw(rt, "cpSeq")
				if err := l.SaveCheckpoint(seq, []byte{byte(seq)}); err != nil {
					rt.Fatal(err)
				}
				cps = retain(insertSorted(cps, seq))
				at := rapid.Uint64Range(0, uint64(len(model))).Draw(rt, "at")
				got, data, ok, err := l.CheckpointAtOrBefore(at)
				want, wantOK := atOrBefore(cps, at)
				if err != nil || ok != wantOK || got != want || (ok && data[0] != byte(got)) {
					rt.Fatalf("CheckpointAtOrBefore(%d) = %d %v %v, want %d %v (checkpoints %v)", at, got, ok, err, want, wantOK, cps)
				}
			},
			"": func(rt *rapid.T) {
				if got := l.LastSeq(); got != uint64(len(model)) {
					rt.Fatalf("LastSeq = %d, want %d", got, len(model))
				}
			},
		})
	})
}

func insertSorted(s []uint64, v uint64) []uint64 {
	for i, x := range s {
		if x == v {
			return s
		}
		if x > v {
			return append(s[:i], append([]uint64{v}, s[i:]...)...)
		}
	}
	return append(s, v)
}

func atOrBefore(s []uint64, at uint64) (uint64, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] <= at {
			return s[i], true
		}
	}
	return 0, false
}
