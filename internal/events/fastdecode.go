package events

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/rdd-project/rdd/internal/spec"
)

// The fast path decodes the hot payloads (Transition and Observed, the bulk
// of any log, and SpecChanged) without reflection. It accepts only the exact shape
// encoding/json produces for them — known lower-case keys, strings,
// integers, the nested "set" and legacy "facts" objects — and gives up on anything else (an
// unknown or differently-cased key, null, a float, invalid UTF-8, trailing
// data), in which case the payload goes through encoding/json. So the
// result is always what json.Unmarshal would give; FuzzFastDecode checks it.

// maxInterned bounds the projector's string intern table; maxInternLen the
// strings it keeps (state, machine, event and reason names, short messages).
const (
	maxInterned  = 4096
	maxInternLen = 128
)

func (p *Projector) decodeTransition(e Envelope) (*Transition, error) {
	p.tr = Transition{}
	if !p.jsonOnly && p.fastTransition(e.Data) {
		return &p.tr, nil
	}
	p.tr = Transition{}
	if err := json.Unmarshal(e.Data, &p.tr); err != nil {
		return nil, fmt.Errorf("%w: decode %s payload at seq %d: %w", ErrFold, e.Type, e.Seq, err)
	}
	return &p.tr, nil
}

func (p *Projector) decodeObserved(e Envelope) (*Observed, error) {
	p.ob = Observed{}
	if !p.jsonOnly && p.fastObserved(e.Data) {
		return &p.ob, nil
	}
	p.ob = Observed{}
	if err := json.Unmarshal(e.Data, &p.ob); err != nil {
		return nil, fmt.Errorf("%w: decode %s payload at seq %d: %w", ErrFold, e.Type, e.Seq, err)
	}
	return &p.ob, nil
}

func (p *Projector) decodeSpecChanged(e Envelope) (*SpecChanged, error) {
	buf := p.sc.Changed[:0]
	p.sc = SpecChanged{}
	if !p.jsonOnly && p.fastSpecChanged(e.Data, buf) {
		return &p.sc, nil
	}
	p.sc = SpecChanged{}
	if err := json.Unmarshal(e.Data, &p.sc); err != nil {
		return nil, fmt.Errorf("%w: decode %s payload at seq %d: %w", ErrFold, e.Type, e.Seq, err)
	}
	return &p.sc, nil
}

// fastSpecChanged decodes a SpecChanged payload; buf is reused for Changed.
func (p *Projector) fastSpecChanged(b []byte, buf []string) bool {
	c := &p.sc
	l := lexer{b: b}
	return l.object(func(key []byte) bool {
		switch string(key) {
		case "generation":
			n, ok := l.int()
			c.Generation = n
			return ok
		case "spec":
			return l.object(func(key []byte) bool {
				switch string(key) {
				case "running":
					return l.boolInto(&c.Spec.Running)
				case "namespace":
					return l.strInto(p, &c.Spec.Namespace)
				case "containerEngine":
					return l.object(func(key []byte) bool {
						if string(key) != "name" {
							return false
						}
						s, ok := l.str(p)
						c.Spec.ContainerEngine.Name = spec.EngineName(s)
						return ok
					})
				case "kubernetes":
					return l.object(func(key []byte) bool {
						switch string(key) {
						case "enabled":
							return l.boolInto(&c.Spec.Kubernetes.Enabled)
						case "version":
							return l.strInto(p, &c.Spec.Kubernetes.Version)
						}
						return false
					})
				}
				return false
			})
		case "changed":
			// encoding/json reuses the slice of a repeated key from length 0.
			if c.Changed != nil {
				buf = c.Changed[:0]
			}
			list, ok := l.strings(p, buf)
			c.Changed = list
			return ok
		case "source":
			return l.object(func(key []byte) bool {
				switch string(key) {
				case "uid":
					return l.intInto(&c.Source.UID)
				case "pid":
					return l.intInto(&c.Source.PID)
				case "command":
					return l.strInto(p, &c.Source.Command)
				}
				return false
			})
		}
		return false
	}) && l.end()
}

// The fast decoders point the patch fields into the projector's scratch
// facts instead of allocating; the decoded payload lives until the next one.

func (p *Projector) fastTransition(b []byte) bool {
	t := &p.tr
	p.resetFactScratch()
	l := lexer{b: b}
	return l.object(func(key []byte) bool {
		switch string(key) {
		case "machine":
			s, ok := l.str(p)
			t.Machine = Machine(s)
			return ok
		case "event":
			return l.strInto(p, &t.Event)
		case "from":
			return l.strInto(p, &t.From)
		case "to":
			return l.strInto(p, &t.To)
		case "reason":
			return l.strInto(p, &t.Reason)
		case "message":
			return l.strInto(p, &t.Message)
		case "generation":
			n, ok := l.int()
			t.Generation = n
			return ok
		case "set":
			return l.patch(p, &t.Facts, &p.setVals)
		case "facts":
			p.legacy = true
			return l.facts(p, &p.legacyVals)
		}
		return false
	}) && l.end() && p.mergeLegacy(&t.Facts)
}

func (p *Projector) fastObserved(b []byte) bool {
	o := &p.ob
	p.resetFactScratch()
	l := lexer{b: b}
	return l.object(func(key []byte) bool {
		switch string(key) {
		case "machine":
			s, ok := l.str(p)
			o.Machine = Machine(s)
			return ok
		case "generation":
			n, ok := l.int()
			o.Generation = n
			return ok
		case "set":
			return l.patch(p, &o.Facts, &p.setVals)
		case "facts":
			p.legacy = true
			return l.facts(p, &p.legacyVals)
		}
		return false
	}) && l.end() && p.mergeLegacy(&o.Facts)
}

func (p *Projector) resetFactScratch() {
	p.setVals, p.legacyVals, p.legacy = Facts{}, Facts{}, false
}

// mergeLegacy applies a legacy "facts" object as UnmarshalJSON does; it
// always reports true.
func (p *Projector) mergeLegacy(f *FactsPatch) bool {
	if p.legacy {
		*f = f.over(patchAll(&p.legacyVals))
	}
	return true
}

// lexer reads one JSON value from b, starting at i.
type lexer struct {
	b []byte
	i int
}

func (l *lexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

func (l *lexer) eat(c byte) bool {
	l.ws()
	if l.i < len(l.b) && l.b[l.i] == c {
		l.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (l *lexer) end() bool {
	l.ws()
	return l.i == len(l.b)
}

// object reads {"key": value, …}, calling field for each key with the lexer
// positioned at the value; field reads the value and reports success.
func (l *lexer) object(field func(key []byte) bool) bool {
	if !l.eat('{') {
		return false
	}
	if l.eat('}') {
		return true
	}
	for {
		l.ws()
		key, ok := l.plainString()
		if !ok || !l.eat(':') {
			return false
		}
		l.ws()
		if !field(key) {
			return false
		}
		if l.eat(',') {
			continue
		}
		return l.eat('}')
	}
}

// plainString reads a string without escapes, control characters or
// non-ASCII bytes and returns its contents (aliasing b).
func (l *lexer) plainString() ([]byte, bool) {
	if l.i >= len(l.b) || l.b[l.i] != '"' {
		return nil, false
	}
	start := l.i + 1
	for j := start; j < len(l.b); j++ {
		switch c := l.b[j]; {
		case c == '"':
			l.i = j + 1
			return l.b[start:j], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// str reads a string value. Strings with escapes or non-ASCII text are
// decoded by encoding/json, so the result is exactly its result.
func (l *lexer) str(p *Projector) (string, bool) {
	if l.i >= len(l.b) || l.b[l.i] != '"' {
		return "", false
	}
	start := l.i
	if raw, ok := l.plainString(); ok {
		return p.internBytes(raw), true
	}
	// Find the closing quote, skipping escaped characters.
	j := start + 1
	for ; j < len(l.b); j++ {
		if c := l.b[j]; c == '\\' {
			j++
		} else if c == '"' {
			break
		} else if c < 0x20 {
			return "", false
		}
	}
	if j >= len(l.b) {
		return "", false
	}
	var s string
	if err := json.Unmarshal(l.b[start:j+1], &s); err != nil {
		return "", false
	}
	l.i = j + 1
	return s, true
}

func (l *lexer) strInto(p *Projector, dst *string) bool {
	s, ok := l.str(p)
	*dst = s
	return ok
}

// int reads a JSON integer (no fraction or exponent) that fits in an int64.
func (l *lexer) int() (int64, bool) {
	i, neg := l.i, false
	if i < len(l.b) && l.b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var n uint64
	for i < len(l.b) && l.b[i] >= '0' && l.b[i] <= '9' {
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(l.b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || (digits > 1 && l.b[start] == '0') {
		return 0, false
	}
	if i < len(l.b) {
		switch l.b[i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		l.i = i
		return -int64(n), true //nolint:gosec // n ≤ 1<<63 checked above
	}
	if n > 1<<63-1 {
		return 0, false
	}
	l.i = i
	return int64(n), true
}

// intInto reads an integer that fits in an int.
func (l *lexer) intInto(dst *int) bool {
	n, ok := l.int()
	*dst = int(n)
	return ok && int64(int(n)) == n
}

// boolInto reads true or false.
func (l *lexer) boolInto(dst *bool) bool {
	rest := l.b[l.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*dst = true
		l.i += 4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*dst = false
		l.i += 5
	default:
		return false
	}
	return true
}

// strings reads an array of strings, appending to buf[:0]; the result is
// never nil, like encoding/json's for "[]".
func (l *lexer) strings(p *Projector, buf []string) ([]string, bool) {
	if !l.eat('[') {
		return nil, false
	}
	out := buf[:0]
	if out == nil {
		out = make([]string, 0, 4)
	}
	if l.eat(']') {
		return out, true
	}
	for {
		l.ws()
		s, ok := l.str(p)
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if l.eat(',') {
			continue
		}
		return out, l.eat(']')
	}
}

// facts reads a Facts object into f, merging like encoding/json does.
func (l *lexer) facts(p *Projector, f *Facts) bool {
	return l.object(func(key []byte) bool {
		switch string(key) {
		case "pid":
			return l.intInto(&f.PID)
		case "restartCount":
			return l.intInto(&f.RestartCount)
		case "port":
			return l.intInto(&f.Port)
		case "templateHash":
			return l.strInto(p, &f.TemplateHash)
		case "restartKey":
			return l.strInto(p, &f.RestartKey)
		case "containers":
			return l.intInto(&f.Containers)
		case "images":
			return l.intInto(&f.Images)
		case "volumes":
			return l.intInto(&f.Volumes)
		case "ambiguousStreak":
			return l.intInto(&f.AmbiguousStreak)
		}
		return false
	})
}

// patch reads a FactsPatch object into f, pointing the fields it sets into
// vals. A repeated key writes through the pointer already set, as
// encoding/json does.
func (l *lexer) patch(p *Projector, f *FactsPatch, vals *Facts) bool {
	num := func(ptr **int, v *int) bool {
		if *ptr == nil {
			*ptr = v
		}
		return l.intInto(*ptr)
	}
	str := func(ptr **string, v *string) bool {
		if *ptr == nil {
			*ptr = v
		}
		return l.strInto(p, *ptr)
	}
	return l.object(func(key []byte) bool {
		switch string(key) {
		case "pid":
			return num(&f.PID, &vals.PID)
		case "restartCount":
			return num(&f.RestartCount, &vals.RestartCount)
		case "port":
			return num(&f.Port, &vals.Port)
		case "templateHash":
			return str(&f.TemplateHash, &vals.TemplateHash)
		case "restartKey":
			return str(&f.RestartKey, &vals.RestartKey)
		case "containers":
			return num(&f.Containers, &vals.Containers)
		case "images":
			return num(&f.Images, &vals.Images)
		case "volumes":
			return num(&f.Volumes, &vals.Volumes)
		case "ambiguousStreak":
			return num(&f.AmbiguousStreak, &vals.AmbiguousStreak)
		}
		return false
	})
}

// internBytes returns b as a string, sharing one copy of short recurring
// values (machine, state and reason names) to spare an allocation per field.
func (p *Projector) internBytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := p.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if p.intern == nil {
		p.intern = make(map[string]string, 64)
	}
	if len(p.intern) < maxInterned {
		p.intern[s] = s
	}
	return s
}
