package config

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines maps a dotted key, spelt as toml.Key.String spells it, to the
// 1-based line that defines it. It is built by a small scanner that knows
// table headers, "key = value" lines and multi-line strings; keys inside
// inline tables are not found (lookups then fall back to no line).
type keyLines map[string]int

// exact returns the line of key k, or 0.
func (kl keyLines) exact(k string) int { return kl[k] }

// near returns the line of key k or, failing that, of its closest parent.
func (kl keyLines) near(k string) int {
	for {
		if l := kl[k]; l > 0 {
			return l
		}
		p, _ := splitLastKey(k)
		if p == "" || p == k {
			return 0
		}
		k = p
	}
}

// splitLastKey splits a toml.Key.String form at its last unquoted dot.
func splitLastKey(k string) (parent, leaf string) {
	pieces, _, ok := parseKey(k)
	if !ok || len(pieces) < 2 {
		return "", k
	}
	return toml.Key(pieces[:len(pieces)-1]).String(), pieces[len(pieces)-1]
}

func scanKeyLines(data []byte) keyLines {
	kl := keyLines{}
	var table []string
	inString := "" // the closing delimiter of an open multi-line string
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := strings.TrimSpace(string(raw))
		n := i + 1
		if inString != "" {
			if strings.Contains(line, inString) {
				inString = ""
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			s := strings.TrimPrefix(line[1:], "[")
			pieces, rest, ok := parseKey(s)
			if !ok || !strings.HasPrefix(rest, "]") {
				continue
			}
			table = pieces
			kl.add(pieces, n)
			continue
		}
		pieces, rest, ok := parseKey(line)
		if !ok || !strings.HasPrefix(rest, "=") {
			continue
		}
		full := append(append([]string(nil), table...), pieces...)
		kl.add(full, n)
		val := strings.TrimSpace(rest[1:])
		for _, delim := range []string{`"""`, `'''`} {
			if strings.HasPrefix(val, delim) && !strings.Contains(val[3:], delim) {
				inString = delim
			}
		}
	}
	return kl
}

// add records line n for key and, where not yet known, for its parents
// (a dotted key defines its parent tables implicitly).
func (kl keyLines) add(key []string, n int) {
	for i := 1; i <= len(key); i++ {
		k := toml.Key(key[:i]).String()
		if _, ok := kl[k]; !ok {
			kl[k] = n
		}
	}
}

// parseKey parses a possibly dotted, possibly quoted TOML key at the start
// of s and returns its pieces and the rest of s after trailing blanks.
func parseKey(s string) (pieces []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, "", false
			}
			p, err := strconv.Unquote(s[:end+1])
			if err != nil {
				p = s[1:end]
			}
			pieces = append(pieces, p)
			s = s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", false
			}
			pieces = append(pieces, s[1:end+1])
			s = s[end+2:]
		default:
			end := 0
			for end < len(s) && isBare(s[end]) {
				end++
			}
			if end == 0 {
				return nil, "", false
			}
			pieces = append(pieces, s[:end])
			s = s[end:]
		}
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return pieces, s, true
		}
		s = s[1:]
	}
}

func isBare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func tomlKeyString(pieces []string) string { return toml.Key(pieces).String() }
