package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse checks that Parse never panics and that an accepted
// configuration survives encoding and parsing again unchanged.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(configs, "*.toml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed configs in %s: %v", configs, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config with an error")
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("encoding accepted config: %v", err)
		}
		c2, err := Parse(buf.Bytes(), "re-encoded.toml")
		if err != nil {
			t.Fatalf("re-encoded config rejected: %v\n%s", err, buf.Bytes())
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", c, c2, buf.Bytes())
		}
	})
}
