package engine

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestListFiltersEncode(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    listFilters
		want string
	}{
		{"nil", nil, ""},
		{"key without values", listFilters{"id": nil}, ""},
		{"one value", listFilters{"id": {"abc"}}, `{"id":{"abc":true}}`},
		{"values and keys sorted, duplicates merged", listFilters{"type": {"volume", "container", "volume"}, "label": {"a=b"}},
			`{"label":{"a=b":true},"type":{"container":true,"volume":true}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.encode()
			if err != nil || got != tc.want {
				t.Fatalf("encode() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestEventMessageDecode decodes a container event as dockerd 20.10 sends
// it: the deprecated top-level status, id and from keys must not shadow
// Action and Actor (encoding/json matches keys case-insensitively).
func TestEventMessageDecode(t *testing.T) {
	const line = `{"status":"rename","id":"c1","from":"busybox","Type":"container","Action":"rename",` +
		`"Actor":{"ID":"c1","Attributes":{"image":"busybox","name":"new","oldName":"/old"}},` +
		`"scope":"local","time":1767323046,"timeNano":1767323046000000007}`
	var m eventMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	want := eventMessage{
		Type: eventContainer, Action: actionRename,
		Actor: eventActor{ID: "c1", Attributes: map[string]string{"image": "busybox", "name": "new", "oldName": "/old"}},
		Scope: "local", Time: 1767323046, TimeNano: 1767323046000000007,
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("decoded %+v\nwant %+v", m, want)
	}
}

// TestDockerClientEventsQuery: a zero Since sends no since parameter, and
// Since is sent with nanoseconds whatever its location.
func TestDockerClientEventsQuery(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    eventsOptions
		want string
	}{
		{"zero", eventsOptions{}, ""},
		{"since", eventsOptions{Since: time.Unix(1767323045, 6).In(time.FixedZone("X", 3600))}, "since=1767323045.000000006"},
		{"filters", eventsOptions{Filters: listFilters{"type": {"image", "container"}}},
			"filters=%7B%22type%22%3A%7B%22container%22%3Atrue%2C%22image%22%3Atrue%7D%7D"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			queries := make(chan string, 1)
			c := mustClient(t, serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				queries <- r.URL.RawQuery
				_, _ = io.WriteString(w, "") // a clean end of the stream
			})))
			_, errs := c.Events(t.Context(), tc.o)
			if q := <-queries; q != tc.want {
				t.Fatalf("query %q, want %q", q, tc.want)
			}
			if err := recvEnd(t, errs); !errors.Is(err, io.EOF) {
				t.Fatalf("stream ended with %v, want io.EOF", err)
			}
		})
	}
}
