package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/cli/svc"
	"github.com/rdd-project/rdd/internal/spec"
)

// logsOptions are the flags of svc logs.
type logsOptions struct {
	follow         bool
	tail           int
	since          string
	stdout, stderr bool
	engine, k3s    bool
	out            outputFlags
}

func newSvcLogsCommand(e *env) *cobra.Command {
	var o logsOptions
	formats := []render.Format{render.Text, render.JSON}
	cmd := &cobra.Command{
		Use:   "logs [-f] [-n N] [--since DURATION|TIME] [--engine|--k3s|--stdout|--stderr] [-o text|json]",
		Short: "Print the daemon's, the engine's or k3s's log",
		Long: `
			Print the daemon's log, one line per entry: time, level, message,
			then the entry's fields as key=value. -o json prints the log's own
			JSON lines instead (entries of the engine's and k3s's logs, which
			are key=value text, are converted to one JSON object a line).

			--engine prints the container engine's log (dockerd.log for moby,
			containerd.log for containerd), --k3s the log of k3s; both are
			written by the host driver (RDD_VM_DRIVER=host) in the log
			directory (rdd svc paths log_dir). --stdout and --stderr print what
			the daemon process wrote outside its log (a crash, a panic).

			-n N prints only the last N lines; --since 5m or --since TIME
			(RFC 3339) only the entries from then on (a line without a time of
			its own goes with the entry before it). --follow keeps printing
			what is appended, across rotations, until interrupted.`,
		Example: `
			rdd svc logs -n 20
			rdd svc logs -f --since 10m
			rdd svc logs --engine -n 50
			rdd svc logs -o json | jq -r .msg
			rdd svc logs --stderr`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := o.out.format(formats...)
			if err != nil {
				return err
			}
			return e.showLogs(cmd.Context(), o, f)
		},
	}
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new log lines until interrupted")
	cmd.Flags().IntVarP(&o.tail, "tail", "n", -1, "print only the last N lines (-1: all)")
	cmd.Flags().StringVar(&o.since, "since", "", "print only entries from DURATION ago (5m) or RFC 3339 TIME on")
	cmd.Flags().BoolVar(&o.engine, "engine", false, "print the container engine's log (host driver)")
	cmd.Flags().BoolVar(&o.k3s, "k3s", false, "print k3s's log (host driver)")
	cmd.Flags().BoolVar(&o.stdout, "stdout", false, "print the daemon's standard output log")
	cmd.Flags().BoolVar(&o.stderr, "stderr", false, "print the daemon's standard error log")
	o.out.add(cmd, formats...)
	return cmd
}

// showLogs prints the log o selects in format f.
func (e *env) showLogs(ctx context.Context, o logsOptions, f render.Format) error {
	var picked []string
	for name, on := range map[string]bool{"--engine": o.engine, "--k3s": o.k3s, "--stdout": o.stdout, "--stderr": o.stderr} {
		if on {
			picked = append(picked, name)
		}
	}
	if len(picked) > 1 {
		slices.Sort(picked)
		return usageErrf("%s cannot be combined: each names a different log", strings.Join(picked, " and "))
	}
	if o.tail < -1 {
		return usageErrf("invalid --tail %d: want a number of lines ≥ 0, or -1 for all", o.tail)
	}
	var since time.Time
	if o.since != "" {
		var err error
		if since, err = parseSince(o.since, e.now()); err != nil {
			return usageErr(err)
		}
	}
	p, err := e.instance()
	if err != nil {
		return err
	}
	path, what := p.DaemonLog, "the daemon"
	switch {
	case o.stdout:
		path = p.DaemonStdoutLog
	case o.stderr:
		path = p.DaemonStderrLog
	case o.engine:
		name := e.engineName(ctx)
		path, what = filepath.Join(p.LogDir, engineLogs[name]), "the "+string(name)+" engine"
	case o.k3s:
		path, what = filepath.Join(p.LogDir, "k3s.log"), "k3s"
	}
	w := &logWriter{out: e.stdout, format: f, since: since}
	off, err := readLog(path, o.tail, o.follow, w)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !o.follow:
		hint := "it has not run yet (rdd svc start starts it)"
		if o.engine || o.k3s {
			hint = "it has not run on this host (only the host driver, RDD_VM_DRIVER=host, writes this log)"
		}
		return fmt.Errorf("no log of %s of instance %s at %s: %s", what, p.Instance, path, hint)
	case errors.Is(err, fs.ErrNotExist):
		off = 0 // follow waits for the file
	case err != nil:
		return fmt.Errorf("read log %s: %w", path, err)
	}
	if !o.follow {
		return nil
	}
	tick, stop := e.followTicker()
	defer stop()
	return svc.FollowLines(ctx, path, off, tick, w.line)
}

// engineLogs names the host driver's log of each engine. moby also runs a
// containerd, but dockerd's log is the one that explains the engine.
var engineLogs = map[spec.EngineName]string{
	spec.EngineMoby:       "dockerd.log",
	spec.EngineContainerd: "containerd.log",
}

// engineName is the engine of the App's spec: from the daemon when it
// serves, else from the event log; moby (the default) when neither says.
func (e *env) engineName(ctx context.Context) spec.EngineName {
	name := spec.Default().ContainerEngine.Name
	c, err := e.client()
	if err != nil {
		return name
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := c.Status(ctx)
	if client.IsDaemonNotRunning(err) {
		if o, oerr := e.openOffline(); oerr == nil {
			s, err = o.Status(ctx)
			o.Close()
		}
	}
	if err == nil && s.Spec != nil && engineLogs[s.Spec.ContainerEngine.Name] != "" {
		name = s.Spec.ContainerEngine.Name
	}
	return name
}

// followTicker paces svc logs --follow (tests drive it through newTicker).
func (e *env) followTicker() (<-chan time.Time, func()) {
	if e.newTicker != nil {
		return e.newTicker(svc.FollowInterval)
	}
	t := time.NewTicker(svc.FollowInterval)
	return t.C, t.Stop
}

// parseSince reads --since of svc logs: a duration before now or an RFC
// 3339 time. (A log has no seqs, unlike the event log's --since.)
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("invalid --since %q: a duration counts back from now and must be positive", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid --since %q: want a duration ago (5m, 2h) or an RFC 3339 time (2026-11-26T12:00:00Z)", s)
}

// tailWindow is how much of a log's end readLog reads at a time when only
// the last lines are wanted, so -n 20 of a large log reads little of it.
const tailWindow = 64 << 10

// readLog passes the lines of the log at path to w (the last tail of them
// when tail ≥ 0) and returns the offset after the last complete line, where
// a follow continues. A last line without its newline yet is left to the
// follow, else printed.
func readLog(path string, tail int, follow bool, w *logWriter) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	start := int64(0)
	if tail >= 0 && w.since.IsZero() {
		// Read whole windows from the end until they hold tail+1 newlines
		// (the one before the first wanted line), or the file starts.
		start = st.Size()
		for start > 0 {
			start = max(start-tailWindow, 0)
			n, err := countNewlines(f, start, st.Size())
			if err != nil {
				return 0, err
			}
			if n > tail {
				break
			}
		}
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	off := start
	var lines [][]byte
	first := start > 0 // the first line read from a window is cut
	for {
		line, rerr := r.ReadBytes('\n')
		eof := errors.Is(rerr, io.EOF)
		switch {
		case eof && (follow || len(line) == 0):
			// A follow prints the last line once its newline is written.
			eof, line = true, nil
		case rerr != nil && !eof:
			return 0, rerr
		case !eof:
			off += int64(len(line))
			line = line[:len(line)-1]
		}
		if line == nil {
			break
		}
		if first {
			first = false
		} else if tail < 0 {
			if err := w.line(line); err != nil {
				return 0, err
			}
		} else if w.keep(line) {
			lines = append(lines, line)
			if len(lines) > tail {
				lines = lines[1:]
			}
		}
		if eof {
			break
		}
	}
	for _, l := range lines {
		if err := w.print(l); err != nil {
			return 0, err
		}
	}
	return off, nil
}

// countNewlines counts the newlines of f in [from, to).
func countNewlines(f *os.File, from, to int64) (int, error) {
	buf := make([]byte, to-from)
	if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return bytes.Count(buf, []byte{'\n'}), nil
}

// logWriter prints log lines in one format, dropping those before since.
type logWriter struct {
	out    io.Writer
	format render.Format
	since  time.Time
	// last is the time of the latest line that had one: a line without
	// (a stack trace, a title) goes with it.
	last time.Time
}

// line prints line unless it is before since.
func (w *logWriter) line(line []byte) error {
	if !w.keep(line) {
		return nil
	}
	return w.print(line)
}

// keep reports whether line is at or after since, and tracks the time.
func (w *logWriter) keep(line []byte) bool {
	if w.since.IsZero() {
		return true
	}
	if t, ok := lineTime(line); ok {
		w.last = t
	}
	return !w.last.IsZero() && !w.last.Before(w.since)
}

func (w *logWriter) print(line []byte) error {
	e := parseLogLine(line)
	var b []byte
	if w.format == render.JSON {
		b = e.json()
	} else {
		b = []byte(e.text())
	}
	return writeLine(w.out, b)
}

// logEntry is one line of a log: the daemon's (zap JSON), an engine's or
// k3s's (logfmt: time="…" level=info msg="…" k=v), or plain text.
type logEntry struct {
	raw    []byte
	kind   logKind
	time   time.Time
	level  string
	msg    string
	fields []logField
}

type logKind int

const (
	plainLine logKind = iota
	jsonLine
	logfmtLine
)

// logField is a key and its value as text (JSON for what is not a string,
// in JSON lines).
type logField struct {
	key, value string
	// json marks a value that is JSON text already.
	json bool
}

// lineTime is the time of a log line, if it has one.
func lineTime(line []byte) (time.Time, bool) {
	e := parseLogLine(line)
	return e.time, !e.time.IsZero()
}

// parseLogLine parses one line; what parses as neither JSON nor logfmt is
// plain.
func parseLogLine(line []byte) logEntry {
	e := logEntry{raw: line}
	if parseJSONLine(&e) || parseLogfmt(&e) {
		return e
	}
	e.kind = plainLine
	return e
}

// parseJSONLine reads a zap line, keeping the fields in their order.
func parseJSONLine(e *logEntry) bool {
	if len(e.raw) == 0 || e.raw[0] != '{' {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(e.raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	var fields []logField
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return false
		}
		key, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false
		}
		var s string
		isString := json.Unmarshal(v, &s) == nil
		switch {
		case key == "ts" || key == "time":
			if isString {
				e.time, _ = time.Parse(time.RFC3339Nano, s)
			} else if f, err := strconv.ParseFloat(string(v), 64); err == nil {
				e.time = time.Unix(0, int64(f*1e9)).UTC() // zap's epoch encoder
			}
		case key == "level" && isString:
			e.level = s
		case key == "msg" && isString:
			e.msg = s
		case isString:
			fields = append(fields, logField{key: key, value: s})
		default:
			fields = append(fields, logField{key: key, value: string(v), json: true})
		}
	}
	e.kind, e.fields = jsonLine, fields
	return true
}

// parseLogfmt reads key=value pairs, values bare or double-quoted; the line
// must be nothing else and name a time, level or msg.
func parseLogfmt(e *logEntry) bool {
	s := string(e.raw)
	var fields []logField
	known := false
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \"") {
			return false
		}
		key, rest := s[:eq], s[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return false
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		s = rest
		switch key {
		case "time", "ts":
			if t, err := time.Parse(time.RFC3339Nano, val); err == nil {
				e.time, known = t, true
				continue
			}
		case "level":
			e.level, known = val, true
			continue
		case "msg":
			e.msg, known = val, true
			continue
		}
		fields = append(fields, logField{key: key, value: val})
	}
	if !known {
		return false
	}
	e.kind, e.fields = logfmtLine, fields
	return true
}

// text is the human form: TIME LEVEL MESSAGE key=value...
func (e logEntry) text() string {
	if e.kind == plainLine {
		return string(e.raw)
	}
	var b strings.Builder
	if !e.time.IsZero() {
		b.WriteString(e.time.UTC().Format(render.TimeFormat))
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "%-5s %s", strings.ToUpper(e.level), e.msg)
	for _, f := range e.fields {
		b.WriteByte(' ')
		b.WriteString(f.key)
		b.WriteByte('=')
		b.WriteString(quoteValue(f))
	}
	return b.String()
}

// quoteValue quotes a string value that would not read back as one word.
func quoteValue(f logField) string {
	if f.json || (f.value != "" && !strings.ContainsAny(f.value, " \t\n\"=") && utf8.ValidString(f.value)) {
		return f.value
	}
	return strconv.Quote(f.value)
}

// json is the line as JSON: a JSON line as it is, a logfmt line as an
// object (time, level, msg, then its fields), plain text as {"msg": …}.
func (e logEntry) json() []byte {
	switch e.kind {
	case jsonLine:
		return e.raw
	case plainLine:
		b, _ := json.Marshal(map[string]string{"msg": string(e.raw)})
		return b
	}
	var b bytes.Buffer
	b.WriteByte('{')
	add := func(k, v string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	if !e.time.IsZero() {
		add("time", e.time.UTC().Format(time.RFC3339Nano))
	}
	if e.level != "" {
		add("level", e.level)
	}
	add("msg", e.msg)
	for _, f := range e.fields {
		add(f.key, f.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}
