package collector

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// A REST answer is decoded while it is read: objects and arrays are walked
// token by token, and only the elements of arrays and maps (a job, a
// checkpoint, a metric) and single values are decoded whole. So an answer
// costs one element's bytes plus what is kept, never the whole body. What
// is kept is bounded too: an array of a million "{}" is 3 MB of JSON but
// would be hundreds of MB of structs, so the elements kept cost at most the
// byte bound (their Go size); the rest are read past and counted.

// errTooLarge is a body over flink.max_response_bytes.
var errTooLarge = errors.New("body larger than flink.max_response_bytes")

// limitReader passes at most n bytes and then fails with errTooLarge,
// unless the body ends there.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if n, err := l.r.Read(one[:]); n == 0 && err == io.EOF {
			return 0, io.EOF
		}
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// squeeze passes JSON with every run of white space outside strings cut to
// one byte. encoding/json's Decoder rescans the white space before a token
// from its start each time it reads more, and keeps it all: 16 MiB of
// spaces would cost 16 MiB and minutes of CPU; squeezed, nothing.
type squeeze struct {
	r                 io.Reader
	inString, escaped bool
	space             bool // the last byte passed was white space
}

func (q *squeeze) Read(p []byte) (int, error) {
	for {
		n, err := q.r.Read(p)
		w := 0
		for _, c := range p[:n] {
			switch {
			case q.inString:
				q.escaped, q.inString = c == '\\' && !q.escaped, c != '"' || q.escaped
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
				if q.space {
					continue
				}
				q.space = true
				p[w] = c
				w++
				continue
			case c == '"':
				q.inString = true
			}
			q.space = false
			p[w] = c
			w++
		}
		if w > 0 || err != nil {
			return w, err
		}
	}
}

// decodeStream decodes the one JSON value of r into v, a pointer, keeping
// array and map elements worth at most budget bytes. It returns how many
// it dropped.
func decodeStream(r io.Reader, v any, budget int64) (dropped int, err error) {
	dec := json.NewDecoder(&squeeze{r: r})
	st := &streamer{dec: dec, budget: budget}
	if err := st.value(reflect.ValueOf(v).Elem()); err != nil {
		return st.dropped, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return st.dropped, errors.New("data after the JSON value")
	}
	return st.dropped, nil
}

type streamer struct {
	dec     *json.Decoder
	budget  int64 // bytes of elements still to keep
	dropped int
}

// keep reports whether another element of type t fits the budget, and
// takes it.
func (s *streamer) keep(t reflect.Type) bool {
	if s.budget < int64(t.Size()) {
		return false
	}
	s.budget -= int64(t.Size())
	return true
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// whole reports whether values of t are decoded in one piece: scalars,
// interfaces, types with their own UnmarshalJSON, and structs without an
// array or map inside (their size is their JSON's).
func whole(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 // []byte is a string
	case reflect.Map:
		return false
	case reflect.Pointer:
		return whole(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !whole(t.Field(i).Type) {
				return false
			}
		}
	}
	return true
}

// value decodes the next value into v.
func (s *streamer) value(v reflect.Value) error {
	if whole(v.Type()) {
		return s.dec.Decode(v.Addr().Interface())
	}
	tok, err := s.dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // null: the zero value, as encoding/json leaves it
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	d, _ := tok.(json.Delim)
	switch {
	case v.Kind() == reflect.Struct && d == '{':
		return s.object(v)
	case v.Kind() == reflect.Slice && d == '[':
		return s.array(v)
	case v.Kind() == reflect.Map && d == '{':
		return s.mapping(v)
	}
	if d == '{' || d == '[' {
		if err := s.rest(); err != nil {
			return err
		}
	}
	return &json.UnmarshalTypeError{Value: fmt.Sprint(tok), Type: v.Type(), Offset: s.dec.InputOffset()}
}

// object decodes the members of an object whose '{' was read.
func (s *streamer) object(v reflect.Value) error {
	fields := fieldsOf(v.Type())
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if i, ok := fields.index(key); ok {
			if err := s.value(v.Field(i)); err != nil {
				return err
			}
		} else if err := s.skip(); err != nil {
			return err
		}
	}
	_, err := s.dec.Token() // '}'
	return err
}

// array decodes the elements of an array whose '[' was read.
func (s *streamer) array(v reflect.Value) error {
	v.SetLen(0)
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	for s.dec.More() {
		if !s.keep(v.Type().Elem()) {
			s.dropped++
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		n := v.Len()
		if n == v.Cap() {
			grown := reflect.MakeSlice(v.Type(), n, max(4, 2*n))
			reflect.Copy(grown, v)
			v.Set(grown)
		}
		v.SetLen(n + 1)
		e := v.Index(n)
		e.SetZero()
		if err := s.dec.Decode(e.Addr().Interface()); err != nil {
			return err
		}
	}
	_, err := s.dec.Token() // ']'
	return err
}

// mapping decodes the members of an object whose '{' was read into a map
// with string keys.
func (s *streamer) mapping(v reflect.Value) error {
	if v.Type().Key().Kind() != reflect.String {
		return fmt.Errorf("map key %s", v.Type().Key())
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if !s.keep(v.Type().Elem()) {
			s.dropped++
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		e := reflect.New(v.Type().Elem())
		if err := s.dec.Decode(e.Interface()); err != nil {
			return err
		}
		v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e.Elem())
	}
	_, err := s.dec.Token() // '}'
	return err
}

// skip reads past the next value without keeping it.
func (s *streamer) skip() error { return s.dec.Decode(&ignored{}) }

// ignored takes any JSON value and keeps nothing: the decoder's scanner
// reads past it without building anything.
type ignored struct{}

func (ignored) UnmarshalJSON([]byte) error { return nil }

// rest reads past the members of an object or array whose opening was read.
func (s *streamer) rest() error {
	for depth := 1; depth > 0; {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
	}
	return nil
}

// fieldSet maps a struct's JSON member names to field indexes: the tag's
// name, matched exactly or else ignoring case (Unicode simple folding, in
// field order), as encoding/json does.
type fieldSet struct {
	exact map[string]int
	names []string // by field index; "" for fields JSON does not see
}

func (f fieldSet) index(key string) (int, bool) {
	if i, ok := f.exact[key]; ok {
		return i, true
	}
	for i, n := range f.names {
		if n != "" && strings.EqualFold(n, key) {
			return i, true
		}
	}
	return 0, false
}

var fieldCache sync.Map // reflect.Type → fieldSet

func fieldsOf(t reflect.Type) fieldSet {
	if f, ok := fieldCache.Load(t); ok {
		return f.(fieldSet)
	}
	f := fieldSet{exact: map[string]int{}, names: make([]string, t.NumField())}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = sf.Name
		}
		if _, dup := f.exact[name]; !dup {
			f.exact[name] = i
		}
		f.names[i] = name
	}
	fieldCache.Store(t, f)
	return f
}
