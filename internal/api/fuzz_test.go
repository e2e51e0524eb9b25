package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/apitest"
	"github.com/rdd-project/rdd/internal/events"
)

// boundedBackend ends every stream after what is already there, so that a
// fuzz input never waits: a watch sends the current snapshot and is then cut
// off as too slow; a follow ends like a plain query, then is cut off too.
type boundedBackend struct{ *apitest.Backend }

func (b boundedBackend) Watch(_ context.Context, _ uint64, fn func([]events.Snapshot) error) error {
	if err := fn([]events.Snapshot{b.Snapshot()}); err != nil {
		return err
	}
	return api.ErrWatcherTooSlow
}

func (b boundedBackend) Events(ctx context.Context, q api.EventQuery, fn func(events.Envelope) error) error {
	follow := q.Follow
	q.Follow = false
	if err := b.Backend.Events(ctx, q, fn); err != nil || !follow {
		return err
	}
	return api.ErrWatcherTooSlow
}

var fuzzStatuses = map[int]bool{200: true, 400: true, 403: true, 404: true, 405: true, 409: true, 422: true, 500: true}

func FuzzHandlers(f *testing.F) {
	for _, s := range [][4]string{
		{"GET", "/v1/status", "", ""},
		{"GET", "/v1/status", "at=3", ""},
		{"GET", "/v1/status", "at=2026-11-26T12:00:02Z", ""},
		{"GET", "/v1/status", "watch=true&since=1", ""},
		{"GET", "/v1/status", "watch=1&at=1", ""},
		{"GET", "/v1/events", "since=1&limit=1&follow=true", ""},
		{"GET", "/v1/events", "since=%zz", ""},
		{"POST", "/v1/spec", "", `{"set":{"running":"true"},"dryRun":true,"command":"rdd set"}`},
		{"POST", "/v1/spec", "", `{"set":{"nope":"x"}}`},
		{"POST", "/v1/spec", "", `{"set":{"running":"true"}}{`},
		{"DELETE", "/v1/app", "", ""},
		{"GET", "/v1/engine/containers", "", ""},
		{"GET", "/v1/engine/", "", ""},
		{"PATCH", "/v1/healthz", "a=b", "{"},
		{"GET", "/../v1//status", "at=\x00", "\xff"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, method, path, rawQuery, body string) {
		b := apitest.NewBackend()
		b.Publish()
		b.Publish()
		b.Publish()
		srv := api.NewServer(boundedBackend{b}, zap.NewNop(), api.ServerOptions{
			Version: "fuzz",
			Engine:  &apitest.Inventory{ContainerList: []string{"c"}},
		})
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://rdd/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Method, req.URL.Path, req.URL.RawQuery = method, path, rawQuery
		rec := httptest.NewRecorder()
		srv.RoutesForTest().ServeHTTP(rec, req)

		res := rec.Result()
		got := rec.Body.Bytes()
		if !fuzzStatuses[res.StatusCode] {
			t.Fatalf("%s %s?%s: status %d", method, path, rawQuery, res.StatusCode)
		}
		if res.Header.Get(api.HeaderVersion) != "fuzz" {
			t.Fatalf("no %s header", api.HeaderVersion)
		}
		if res.StatusCode != 200 {
			var eb api.ErrorBody
			if err := json.Unmarshal(got, &eb); err != nil || eb.Error == "" || eb.Code == "" {
				t.Fatalf("%s %s?%s: %d with body %q is not an error body (%v)", method, path, rawQuery, res.StatusCode, got, err)
			}
			return
		}
		switch ct := res.Header.Get("Content-Type"); ct {
		case api.ContentTypeJSON:
			if !json.Valid(got) {
				t.Fatalf("200 with invalid JSON %q", got)
			}
		case api.ContentTypeNDJSON:
			for _, line := range bytes.Split(bytes.TrimSuffix(got, []byte("\n")), []byte("\n")) {
				if len(got) > 0 && !json.Valid(line) {
					t.Fatalf("stream line %q is not JSON", line)
				}
			}
		default:
			t.Fatalf("200 with Content-Type %q", ct)
		}
	})
}
