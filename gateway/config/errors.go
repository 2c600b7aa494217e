package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrUnknownKey is wrapped by the error for a key the configuration does not
// know (usually a typo).
var ErrUnknownKey = errors.New("config: unknown key")

// Error is a configuration error. It names the file, the line and the dotted
// key where they are known:
//
//	config: FILE:LINE: KEY: MESSAGE
type Error struct {
	File string // file name as given to Parse or Load; "" if none
	Line int    // 1-based line; 0 if unknown
	Key  string // dotted key such as "link.batch_window"; "" if none
	Msg  string // what is wrong, without file, line or key
	Err  error  // underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	// An unknown key's message already quotes the key.
	if e.Key != "" && !errors.Is(e.Err, ErrUnknownKey) {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// fieldErr returns a validation error for key, without file or line yet.
func fieldErr(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// locate adds the file name and the key's line to a validation error.
func locate(err error, name string, lines keyLines) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	c.File = name
	if c.Line == 0 {
		c.Line = lines.exact(c.Key)
	}
	if c.Line == 0 && strings.HasPrefix(c.Key, "local_domains.") {
		c.Line = lines.near(c.Key) // an entry written in an inline table
	}
	return &c
}

// tomlLastKey matches the errors BurntSushi/toml builds with fmt.Errorf
// (type mismatches), which carry the key and line only in their text.
var tomlLastKey = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "((?:[^"\\]|\\.)*)"\): (.*)$`)

var tomlIncompatible = regexp.MustCompile(`^incompatible types: TOML value has type (.*); destination has type (.*)$`)

// decodeError turns an error from the TOML decoder into an *Error.
func decodeError(err error, name string, lines keyLines) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := strings.TrimPrefix(pe.Message, "config: ")
		e := &Error{File: name, Line: pe.Position.Line, Key: pe.LastKey, Msg: msg, Err: err}
		if e.Key != "" && !isLeafKey(e.Key) {
			// A syntax error: LastKey is only the key parsed before it.
			e.Key = ""
		}
		if e.Line == 0 && e.Key != "" {
			e.Line = lines.near(e.Key)
		}
		return e
	}
	msg := err.Error()
	if m := tomlLastKey.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		key := strings.ReplaceAll(m[2], `\"`, `"`)
		key = strings.ReplaceAll(key, `\\`, `\`)
		msg = m[3]
		if t := tomlIncompatible.FindStringSubmatch(msg); t != nil {
			msg = fmt.Sprintf("value is a TOML %s, want %s", tomlTypeName(t[1]), t[2])
		}
		if line == 0 {
			line = lines.near(key)
		}
		return &Error{File: name, Line: line, Key: key, Msg: msg, Err: err}
	}
	return &Error{File: name, Msg: strings.TrimPrefix(msg, "toml: "), Err: err}
}

// knownKeys lists every dotted key of Config, in declaration order, with the
// Go type of its field.
var knownKeys = func() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			k := prefix + tag
			keys = append(keys, k)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
				walk(k+".", f.Type)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}()

var leafKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range knownKeys {
		m[k] = true
	}
	return m
}()

// isLeafKey reports whether k is a known key or an entry of a map-valued key.
func isLeafKey(k string) bool {
	return leafKeys[k] || strings.HasPrefix(k, "local_domains.")
}

// suggest returns the known key closest to the unknown key k, or "" if none
// is close enough to be a likely typo.
func suggest(k string) string {
	parent, leaf := splitLastKey(k)
	best, bestD := "", -1
	for _, known := range knownKeys {
		d := levenshtein(k, known)
		kp, kl := splitLastKey(known)
		if dl := levenshtein(leaf, kl); kp != parent && dl+1 < d {
			d = dl + 1 // right name in the wrong table
		}
		if bestD < 0 || d < bestD {
			best, bestD = known, d
		}
	}
	limit := max(2, len(leaf)/3)
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// tomlTypeName turns the Go type BurntSushi/toml reports for a decoded value
// into the TOML type a user wrote.
func tomlTypeName(goType string) string {
	switch {
	case goType == "int64":
		return "integer"
	case goType == "float64":
		return "float"
	case goType == "bool":
		return "boolean"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "map["):
		return "table"
	case strings.Contains(goType, "Time") || strings.Contains(goType, "Local"):
		return "date-time"
	}
	return goType
}
