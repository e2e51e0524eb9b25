package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// route is one path of the handler table: its handler per method.
type route struct {
	methods map[string]http.HandlerFunc
	allow   string // sorted methods, for the Allow header of a 405
}

func newRoute(methods map[string]http.HandlerFunc) route {
	names := make([]string, 0, len(methods))
	for m := range methods {
		names = append(names, m)
	}
	sort.Strings(names)
	return route{methods: methods, allow: strings.Join(names, ", ")}
}

// routeTable is the handler table of design.md §6.
func (s *Server) routeTable() map[string]route {
	t := map[string]route{
		PathHealthz: newRoute(map[string]http.HandlerFunc{http.MethodGet: s.healthz}),
		PathStatus:  newRoute(map[string]http.HandlerFunc{http.MethodGet: s.status}),
		PathEvents:  newRoute(map[string]http.HandlerFunc{http.MethodGet: s.events}),
		PathSpec:    newRoute(map[string]http.HandlerFunc{http.MethodPost: s.setSpec}),
		PathApp:     newRoute(map[string]http.HandlerFunc{http.MethodDelete: s.deleteApp}),
	}
	for _, kind := range EngineKinds {
		t[PathEngine+kind] = newRoute(map[string]http.HandlerFunc{http.MethodGet: s.engineHandler(kind)})
	}
	return t
}

// dispatch routes a request by path, then by method. It does not check the
// peer: guard does, before it.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(HeaderVersion, s.opts.Version)
	rt, ok := s.routes[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
		return
	}
	h, ok := rt.methods[r.Method]
	if !ok {
		w.Header().Set("Allow", rt.allow)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("%s does not allow %s (allowed: %s)", r.URL.Path, r.Method, rt.allow))
		return
	}
	if ce := s.log.Check(zap.DebugLevel, "request"); ce != nil {
		peer, _ := PeerFrom(r.Context())
		ce.Write(zap.String("method", r.Method), zap.String("uri", r.URL.RequestURI()), zap.Int("uid", peer.UID), zap.Int("pid", peer.PID))
	}
	h(w, r)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.query(w, r); !ok {
		return
	}
	h := Health{Status: "ok", Version: s.opts.Version, PID: os.Getpid(),
		Commit: s.opts.Commit, BuildDate: s.opts.BuildDate, GoVersion: runtime.Version()}
	if s.opts.Components != nil {
		h.Engine, h.Kubernetes = s.opts.Components()
	}
	s.writeJSON(w, r, h)
}

// status serves GET /v1/status[?at=…] and, with watch=true, the watch stream.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	q, ok := s.query(w, r, "at", "watch", "since")
	if !ok {
		return
	}
	watch, err := q.boolean("watch")
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	since, err := q.uint("since")
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	_, hasAt := q["at"]
	_, hasSince := q["since"]
	switch {
	case watch && hasAt:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "at and watch=true cannot be combined")
	case watch:
		s.watch(w, r, since)
	case hasSince:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "since needs watch=true")
	case hasAt:
		at, err := ParseAt(q.get("at"))
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			return
		}
		snap, err := s.b.SnapshotAt(r.Context(), at)
		if err != nil {
			s.writeBackendError(w, r, err)
			return
		}
		s.writeJSON(w, r, snap)
	default:
		s.writeJSON(w, r, s.b.Snapshot())
	}
}

// setSpec serves POST /v1/spec.
func (s *Server) setSpec(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.query(w, r); !ok {
		return
	}
	var req SetRequest
	if !s.decodeBody(w, r, &req, setRequestKeys) {
		return
	}
	req.Command = boundCommand(req.Command)
	src, _ := PeerFrom(r.Context())
	resp, err := s.b.SetSpec(r.Context(), req, src)
	if err != nil {
		s.writeBackendError(w, r, err)
		return
	}
	if resp.Changed == nil {
		resp.Changed = []string{}
	}
	s.writeJSON(w, r, resp)
}

// deleteApp serves DELETE /v1/app.
func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.query(w, r); !ok {
		return
	}
	src, _ := PeerFrom(r.Context())
	if err := s.b.DeleteApp(r.Context(), src); err != nil {
		s.writeBackendError(w, r, err)
		return
	}
	s.writeJSON(w, r, DeleteResponse{Deleted: true})
}

// engineHandler serves GET /v1/engine/{kind} from the EngineInventory.
func (s *Server) engineHandler(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.query(w, r); !ok {
			return
		}
		inv := s.opts.Engine
		if inv == nil {
			writeError(w, http.StatusNotFound, CodeNotFound, "this daemon does not serve the engine inventory")
			return
		}
		var list func(context.Context) (any, error)
		switch kind {
		case EngineContainers:
			list = inv.Containers
		case EngineImages:
			list = inv.Images
		default:
			list = inv.Volumes
		}
		v, err := list(r.Context())
		if err != nil {
			s.writeBackendError(w, r, err)
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			s.writeBackendError(w, r, fmt.Errorf("encode engine %s: %w", kind, err))
			return
		}
		if string(b) == "null" {
			b = []byte("[]")
		}
		writeBody(w, http.StatusOK, ContentTypeJSON, b)
	}
}

// setRequestKeys are SetRequest's JSON keys as spelled on the wire.
var setRequestKeys = []string{"set", "dryRun", "command"}

// decodeBody decodes the JSON body of r into v, strictly: at most
// MaxRequestBytes, read within BodyReadTimeout, no unknown fields, nothing
// after the value, no duplicate keys and no key of known spelled in another
// case (checkKeys). It answers 400 (408 for a body that did not arrive in
// time) and returns false when the body does not fit.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, known []string) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("request body is larger than %d bytes", MaxRequestBytes))
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeError(w, http.StatusRequestTimeout, CodeRequestTimeout, fmt.Sprintf("request body did not arrive within %s: send the whole request at once", s.opts.BodyReadTimeout))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "read request body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body is empty: want a JSON object")
		return false
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "malformed request body: "+err.Error())
		return false
	}
	if err := checkKeys(data, known); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return false
	}
	return true
}

// query is a request's parsed query string, one value per name.
type query map[string]string

// query parses r's query string, allowing only the names given. On a bad
// query it answers 400 and returns false.
func (s *Server) query(w http.ResponseWriter, r *http.Request, allowed ...string) (query, bool) {
	if r.URL.RawQuery == "" {
		return query{}, true
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "malformed query string: "+err.Error())
		return nil, false
	}
	q := make(query, len(vals))
	for name, vs := range vals {
		if !contains(allowed, name) {
			msg := fmt.Sprintf("unknown query parameter %q for %s", name, r.URL.Path)
			if len(allowed) > 0 {
				msg += " (allowed: " + strings.Join(allowed, ", ") + ")"
			}
			writeError(w, http.StatusBadRequest, CodeBadRequest, msg)
			return nil, false
		}
		if len(vs) != 1 {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("query parameter %q given %d times", name, len(vs)))
			return nil, false
		}
		q[name] = vs[0]
	}
	return q, true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (q query) get(name string) string { return q[name] }

// boolean reads a true/false parameter; absent is false.
func (q query) boolean(name string) (bool, error) {
	v, ok := q[name]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

// uint reads a non-negative integer parameter; absent is 0.
func (q query) uint(name string) (uint64, error) {
	v, ok := q[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

// writeJSON answers 200 with v encoded as json.Marshal does, plus '\n'.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.writeBackendError(w, r, fmt.Errorf("encode answer: %w", err))
		return
	}
	writeBody(w, http.StatusOK, ContentTypeJSON, b)
}

// writeBody answers status with body b plus '\n', with a Content-Length.
func writeBody(w http.ResponseWriter, status int, contentType string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers an ErrorBody with status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeErrorBody(w, status, ErrorBody{Error: msg, Code: code})
}

func writeErrorBody(w http.ResponseWriter, status int, body ErrorBody) {
	b, _ := json.Marshal(body) // cannot fail: strings and a number
	writeBody(w, status, ContentTypeJSON, b)
}

// errorBody classifies a Backend error: its code, message and resume seq.
func errorBody(err error) ErrorBody {
	var rej *RejectedError
	var coded *Error
	switch {
	case errors.As(err, &rej):
		return ErrorBody{Code: CodeRejected, Error: rej.Message}
	case errors.As(err, &coded):
		return ErrorBody{Code: coded.Code, Error: coded.Message, ResumeSeq: coded.ResumeSeq}
	}
	return ErrorBody{Code: CodeInternal, Error: err.Error()}
}

// writeBackendError answers the status err calls for and logs internal errors.
func (s *Server) writeBackendError(w http.ResponseWriter, r *http.Request, err error) {
	body := errorBody(err)
	status := statusForCode(body.Code)
	if status == http.StatusInternalServerError {
		body.Code, body.ResumeSeq = CodeInternal, 0
		if r.Context().Err() == nil { // not just a client that went away
			s.log.Error("request failed", zap.String("method", r.Method), zap.String("uri", r.URL.RequestURI()), zap.Error(err))
		}
	}
	writeErrorBody(w, status, body)
}
