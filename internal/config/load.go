package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a configuration error that names the offending key.
type Error struct {
	Line int    // 0 when the value did not come from the file
	Key  string // dotted path, e.g. flink.scrape_interval
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// Load reads a YAML file on top of Default(). ${VAR} and ${VAR:-default}
// are expanded from the environment first; $$ is a literal $.
func Load(path string) (Config, error) {
	cfg := Default()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := Decode(raw, &cfg, os.LookupEnv); err != nil {
		return cfg, err
	}
	return cfg, nil
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// ExpandEnv replaces ${VAR} and ${VAR:-default}; an unset VAR without a
// default becomes empty, as in a shell.
func ExpandEnv(raw []byte, lookup func(string) (string, bool)) []byte {
	return envRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		if string(m) == "$$" {
			return []byte("$")
		}
		sub := envRef.FindSubmatch(m)
		if v, ok := lookup(string(sub[1])); ok {
			return []byte(v)
		}
		return sub[3]
	})
}

// Decode expands raw and decodes it strictly into cfg: an unknown key, or a
// value of the wrong shape, is an *Error naming the key and line.
func Decode(raw []byte, cfg *Config, lookup func(string) (string, bool)) error {
	raw = ExpandEnv(raw, lookup)
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file is all defaults
		}
		return &Error{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	// One file is one configuration: a second document (after "---")
	// would be silently ignored.
	var second yaml.Node
	if err := dec.Decode(&second); !errors.Is(err, io.EOF) {
		line := 0
		if err == nil && len(second.Content) > 0 {
			line = second.Content[0].Line
		}
		return &Error{Line: line, Key: "(top level)", Msg: "a second YAML document: one file holds one configuration"}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	cfg.lines = map[string]int{}
	return decodeNode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "", cfg.lines)
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// decodeNode walks the document beside the struct, so that every error can
// name the dotted key it belongs to. yaml.v3's own errors name only Go types.
func decodeNode(n *yaml.Node, v reflect.Value, path string, lines map[string]int) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	lines[path] = n.Line
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) || v.Kind() != reflect.Struct && v.Kind() != reflect.Slice {
		return decodeLeaf(n, v, path)
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return &Error{Line: n.Line, Key: keyName(path), Msg: "expected a mapping"}
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if first, dup := seen[k.Value]; dup {
				// yaml.v3 keeps the last one; which one the user meant is
				// anyone's guess.
				return &Error{Line: k.Line, Key: join(path, k.Value), Msg: fmt.Sprintf("duplicate key (first set at line %d)", first)}
			}
			seen[k.Value] = k.Line
			f, ok := fieldByTag(v, k.Value)
			if !ok {
				return &Error{Line: k.Line, Key: join(path, k.Value), Msg: "unknown key (valid: " + strings.Join(tags(v.Type()), ", ") + ")"}
			}
			if err := decodeNode(val, f, join(path, k.Value), lines); err != nil {
				return err
			}
		}
		return nil
	default: // slice
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			v.Set(reflect.Zero(v.Type()))
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return &Error{Line: n.Line, Key: keyName(path), Msg: "expected a list"}
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), lines); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
}

func decodeLeaf(n *yaml.Node, v reflect.Value, path string) error {
	if err := n.Decode(v.Addr().Interface()); err != nil {
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
			// "line 3: cannot unmarshal !!str `abc` into int" → keep the why.
			if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
				msg = msg[i+2:]
			}
		}
		return &Error{Line: n.Line, Key: keyName(path), Msg: msg}
	}
	return nil
}

func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" {
			out = append(out, tag)
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyName(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
