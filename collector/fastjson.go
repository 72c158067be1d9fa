package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// /jobs/:id/checkpoints is the largest answer of a scrape (every history
// entry of every job) and encoding/json spends most of a scrape on it. This
// decoder reads it in one pass into the same checkpointsBody, accepting and
// refusing exactly what encoding/json does (a differential fuzz test holds it
// to that): invalid JSON anywhere, or a value of the wrong kind for a typed
// field, is an error; lenient fields take any value.

// fastDecoder is implemented by answers with a hand-written decoder.
type fastDecoder interface {
	decodeFast(data []byte) error
}

type scanner struct {
	data []byte
	pos  int
}

var errSyntax = errors.New("invalid JSON")

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, s.pos)
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.fail("expected " + string(c))
	}
	s.pos++
	return nil
}

// str reads a string and returns its raw contents (escapes undone only by
// unescape) and whether it holds any escape.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	if s.peek() != '"' {
		return nil, false, s.fail("expected a string")
	}
	s.pos++
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			s.pos++
			if s.pos >= len(s.data) {
				return nil, false, s.fail("unterminated escape")
			}
			switch s.data[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				if s.pos+5 > len(s.data) {
					return nil, false, s.fail("short \\u escape")
				}
				for _, h := range s.data[s.pos+1 : s.pos+5] {
					if !isHex(h) {
						return nil, false, s.fail("bad \\u escape")
					}
				}
				s.pos += 5
			default:
				return nil, false, s.fail("bad escape")
			}
		case c < 0x20:
			return nil, false, s.fail("control character in string")
		default:
			s.pos++
		}
	}
	return nil, false, s.fail("unterminated string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// text is a string value as Go text, escapes undone as encoding/json does.
func (s *scanner) text() (string, error) {
	start := s.pos
	raw, escaped, err := s.str()
	if err != nil {
		return "", err
	}
	if !escaped && utf8.Valid(raw) {
		return string(raw), nil
	}
	var v string
	if err := json.Unmarshal(s.data[start:s.pos], &v); err != nil {
		return "", err
	}
	return v, nil
}

// number reads a number per JSON's grammar and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.pos
	d := s.data
	if s.pos < len(d) && d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && d[s.pos] >= '1' && d[s.pos] <= '9':
		for s.pos < len(d) && d[s.pos] >= '0' && d[s.pos] <= '9' {
			s.pos++
		}
	default:
		return nil, s.fail("bad number")
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if s.pos >= len(d) || d[s.pos] < '0' || d[s.pos] > '9' {
			return nil, s.fail("bad fraction")
		}
		for s.pos < len(d) && d[s.pos] >= '0' && d[s.pos] <= '9' {
			s.pos++
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(d) || d[s.pos] < '0' || d[s.pos] > '9' {
			return nil, s.fail("bad exponent")
		}
		for s.pos < len(d) && d[s.pos] >= '0' && d[s.pos] <= '9' {
			s.pos++
		}
	}
	return d[start:s.pos], nil
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return s.fail("bad literal")
	}
	s.pos += len(word)
	return nil
}

// skip reads and validates any value.
func (s *scanner) skip() error {
	return s.skipDepth(0)
}

func (s *scanner) skipDepth(depth int) error {
	if depth > 10000 {
		return s.fail("nesting too deep")
	}
	switch c := s.peek(); {
	case c == '{':
		return s.object(func(_ []byte) error { return s.skipDepth(depth + 1) })
	case c == '[':
		return s.array(func() error { return s.skipDepth(depth + 1) })
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		_, err := s.number()
		return err
	}
}

// object calls field for every member, with the key's raw bytes; field must
// read the value.
func (s *scanner) object(field func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		start := s.pos
		key, escaped, err := s.str()
		if err != nil {
			return err
		}
		if escaped {
			var k string
			if err := json.Unmarshal(s.data[start:s.pos], &k); err != nil {
				return err
			}
			key = []byte(k)
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.fail("expected , or }")
		}
	}
}

func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.fail("expected , or ]")
		}
	}
}

// isNull consumes a null.
func (s *scanner) isNull() (bool, error) {
	if s.peek() != 'n' {
		return false, nil
	}
	return true, s.literal("null")
}

// rawValue reads any value and returns its bytes, for the lenient types.
func (s *scanner) rawValue() ([]byte, error) {
	s.ws()
	start := s.pos
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

// typeError is what encoding/json reports for a value of the wrong kind.
func typeError(what string) error { return fmt.Errorf("json: cannot unmarshal into %s", what) }

// canon folds a key as encoding/json matches it to a field name (each rune
// upper-cased, so "ſtatus" is "status"), then lower-cases it, so that a
// switch over lower-case ASCII names dispatches it. A key that cannot fold to
// ASCII gives "", which matches no field.
func canon(key []byte, buf *[64]byte) []byte {
	n := 0
	for i := 0; i < len(key); {
		if n == len(buf) {
			return nil
		}
		c := key[i]
		if c < utf8.RuneSelf {
			buf[n] = lowerASCII(c)
			n++
			i++
			continue
		}
		r, w := utf8.DecodeRune(key[i:])
		i += w
		u := unicode.ToUpper(r)
		if u >= utf8.RuneSelf {
			return nil
		}
		buf[n] = lowerASCII(byte(u))
		n++
	}
	return buf[:n]
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func (s *scanner) lenientInt(n *integer) error {
	raw, err := s.rawValue()
	if err != nil {
		return err
	}
	return n.UnmarshalJSON(raw)
}

func (s *scanner) enumField(f interface{ UnmarshalJSON([]byte) error }) error {
	raw, err := s.rawValue()
	if err != nil {
		return err
	}
	return f.UnmarshalJSON(raw)
}

func (b *checkpointsBody) decodeFast(data []byte) error {
	*b = checkpointsBody{}
	s := &scanner{data: data}
	if null, err := s.isNull(); err != nil || null {
		if err == nil {
			err = s.trailing()
		}
		return err
	}
	if s.peek() != '{' {
		if err := s.skip(); err != nil {
			return err
		}
		if err := s.trailing(); err != nil {
			return err
		}
		return typeError("checkpointsBody")
	}
	var typeErr error
	var kb [64]byte
	err := s.object(func(key []byte) error {
		switch string(canon(key, &kb)) {
		case "counts":
			if null, err := s.isNull(); err != nil || null {
				if null {
					b.Counts = nil
				}
				return err
			}
			if s.peek() != '{' {
				typeErr = firstErr(typeErr, typeError("countsBody"))
				return s.skip()
			}
			if b.Counts == nil {
				b.Counts = &countsBody{}
			}
			c := b.Counts
			return s.object(func(k []byte) error {
				switch string(canon(k, &kb)) {
				case "restored":
					return s.lenientInt(&c.Restored)
				case "total":
					return s.lenientInt(&c.Total)
				case "in_progress":
					return s.lenientInt(&c.InProgress)
				case "completed":
					return s.lenientInt(&c.Completed)
				case "failed":
					return s.lenientInt(&c.Failed)
				}
				return s.skip()
			})
		case "latest":
			if null, err := s.isNull(); err != nil || null {
				return err
			}
			if s.peek() != '{' {
				typeErr = firstErr(typeErr, typeError("latest"))
				return s.skip()
			}
			return s.object(func(k []byte) error {
				if string(canon(k, &kb)) != "completed" {
					return s.skip()
				}
				if null, err := s.isNull(); err != nil || null {
					if null {
						b.Latest.Completed = nil
					}
					return err
				}
				if s.peek() != '{' {
					typeErr = firstErr(typeErr, typeError("checkpointEntry"))
					return s.skip()
				}
				if b.Latest.Completed == nil {
					b.Latest.Completed = &checkpointEntry{}
				}
				return s.entry(b.Latest.Completed, &typeErr)
			})
		case "history":
			if null, err := s.isNull(); err != nil || null {
				if null {
					b.History = nil
				}
				return err
			}
			if s.peek() != '[' {
				typeErr = firstErr(typeErr, typeError("[]checkpointEntry"))
				return s.skip()
			}
			// As encoding/json: a repeated "history" decodes over the
			// entries already there.
			b.History = b.History[:0]
			if b.History == nil {
				b.History = []checkpointEntry{}
			}
			return s.array(func() error {
				n := len(b.History)
				if n < cap(b.History) {
					b.History = b.History[:n+1]
				} else {
					b.History = append(b.History, checkpointEntry{})
				}
				e := &b.History[n]
				if null, err := s.isNull(); err != nil || null {
					return err
				}
				if s.peek() != '{' {
					typeErr = firstErr(typeErr, typeError("checkpointEntry"))
					return s.skip()
				}
				return s.entry(e, &typeErr)
			})
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	if err := s.trailing(); err != nil {
		return err
	}
	return typeErr
}

func (s *scanner) trailing() error {
	if s.peek() != 0 {
		return s.fail("data after the value")
	}
	return nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (s *scanner) entry(e *checkpointEntry, typeErr *error) error {
	var kb [64]byte
	return s.object(func(k []byte) error {
		switch string(canon(k, &kb)) {
		case "classname":
			return s.enumField(&e.ClassName)
		case "@class":
			return s.enumField(&e.Class)
		case "status":
			return s.enumField(&e.Status)
		case "checkpoint_type":
			return s.enumField(&e.CheckpointType)
		case "id":
			return s.lenientInt(&e.ID)
		case "trigger_timestamp":
			return s.lenientInt(&e.Trigger)
		case "latest_ack_timestamp":
			return s.lenientInt(&e.LatestAck)
		case "state_size":
			return s.lenientInt(&e.StateSize)
		case "checkpointed_size":
			return s.lenientInt(&e.CheckpointedSize)
		case "end_to_end_duration":
			return s.lenientInt(&e.Duration)
		case "failure_timestamp":
			return s.lenientInt(&e.FailureTimestamp)
		case "is_savepoint":
			switch s.peek() {
			case 't':
				e.IsSavepoint = true
				return s.literal("true")
			case 'f':
				e.IsSavepoint = false
				return s.literal("false")
			case 'n':
				return s.literal("null")
			}
			*typeErr = firstErr(*typeErr, typeError("bool"))
			return s.skip()
		case "failure_message":
			switch s.peek() {
			case '"':
				v, err := s.text()
				e.FailureMessage = v
				return err
			case 'n':
				return s.literal("null")
			}
			*typeErr = firstErr(*typeErr, typeError("string"))
			return s.skip()
		}
		return s.skip()
	})
}
