package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"
)

const configs = "../../testdata/configs"

func TestLoadPair(t *testing.T) {
	ship, err := Load(filepath.Join(configs, "ship.toml"))
	if err != nil {
		t.Fatal(err)
	}
	shore, err := Load(filepath.Join(configs, "shore.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if ship.Name != "ship" || shore.Name != "shore" {
		t.Errorf("names %q, %q", ship.Name, shore.Name)
	}
	if got := ship.LocalDomains["ship.example"]; got != "127.0.0.1:5269" {
		t.Errorf("ship local_domains[ship.example] = %q", got)
	}
	if !reflect.DeepEqual(ship.RemoteDomains, []string{"shore.example"}) {
		t.Errorf("ship remote_domains = %q", ship.RemoteDomains)
	}
	if ship.Link.Dial != shore.Link.Listen || ship.Link.Dial == "" {
		t.Errorf("ship dials %q, shore listens on %q", ship.Link.Dial, shore.Link.Listen)
	}
	if ship.Link.BatchWindow.Duration != 100*time.Millisecond || ship.Link.RateBPS != 9600 {
		t.Errorf("link = %+v", ship.Link)
	}
	// Paths resolve relative to the file's directory.
	if want := filepath.Join(configs, "ship.key"); ship.Link.KeyFile != want {
		t.Errorf("key_file = %q, want %q", ship.Link.KeyFile, want)
	}
	if want := filepath.Join(configs, "state-ship"); ship.StateDir != want {
		t.Errorf("state_dir = %q, want %q", ship.StateDir, want)
	}
	// The keys pin each other.
	for _, p := range []struct{ a, b *Config }{{ship, shore}, {shore, ship}} {
		priv, err := p.a.PrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		peer, err := p.b.PeerPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if !peer.Equal(priv.Public()) {
			t.Errorf("%s's peer_key is not %s's public key", p.b.Name, p.a.Name)
		}
	}
}

func TestDefaults(t *testing.T) {
	data := []byte(`
name = "g"
remote_domains = ["b.example"]
[local_domains]
"a.example" = "localhost:5269"
[link]
listen = ":0"
key_file = "k"
peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="
[s2s]
dialback_secret = "0123456789abcdef"
`)
	c, err := Parse(data, "min.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Name = "g"
	want.RemoteDomains = []string{"b.example"}
	want.LocalDomains = map[string]string{"a.example": "localhost:5269"}
	want.Link.Listen = ":0"
	want.Link.KeyFile = "k"
	want.Link.PeerKey = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="
	want.S2S.DialbackSecret = "0123456789abcdef"
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
	if c.Link.BatchWindow.Duration != 50*time.Millisecond || c.S2S.Listen != "0.0.0.0:5269" ||
		c.LogLevel != "info" || c.SummaryInterval.Duration != 5*time.Minute || c.Link.Transport != "tcp" {
		t.Errorf("defaults not filled: %+v", c)
	}
	// Parse leaves relative paths alone.
	if c.Link.KeyFile != "k" || c.StateDir != "state" {
		t.Errorf("Parse resolved paths: key_file %q state_dir %q", c.Link.KeyFile, c.StateDir)
	}
}

// TestBadFiles checks the exact first error for each bad fixture.
func TestBadFiles(t *testing.T) {
	tests := []struct {
		file string
		want string
		is   error
	}{
		{"bad-misspelt.toml", `bad-misspelt.toml:13: unknown key "link.batch_windw" (did you mean "link.batch_window"?)`, ErrUnknownKey},
		{"bad-table.toml", `bad-table.toml:9: unknown key "lnk" (did you mean "link"?)`, ErrUnknownKey},
		{"bad-duration.toml", `bad-duration.toml:13: link.batch_window: "fast" is not a duration`, nil},
		{"bad-type.toml", `bad-type.toml:13: link.rate_bps: value is a TOML string, want integer`, nil},
		{"bad-quic.toml", `bad-quic.toml:13: link.transport: "udp" is not a transport (use "tcp", "quic" or "datagram")`, nil},
		{"bad-syntax.toml", `bad-syntax.toml:13: `, nil},
		{"bad-batchbytes.toml", `bad-batchbytes.toml:13: link.max_batch_bytes: 100 is out of range (256..1048576)`, nil},
		{"bad-reconnect.toml", `bad-reconnect.toml: link.reconnect_max: 1m0s is less than link.reconnect_min (2m0s)`, nil},
		{"bad-overlap.toml", `bad-overlap.toml:4: remote_domains: "ship.example" is also a local domain`, nil},
		{"bad-domain.toml", `bad-domain.toml:7: local_domains."Ship.Example": "Ship.Example" is not in canonical form; write "ship.example"`, nil},
		{"bad-addr.toml", `bad-addr.toml:7: local_domains."ship.example": "127.0.0.1" is not host:port`, nil},
		{"bad-ownkey.toml", `bad-ownkey.toml:12: link.peer_key: is this gateway's own public key`, nil},
		{"bad-nokeyfile.toml", `bad-nokeyfile.toml:11: link.key_file: linkkey: reading key:`, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(configs, tt.file)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			want := "config: " + filepath.Join(configs, tt.want)
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n got %s\nwant %s...", err, want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is %T, want *Error", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
		})
	}
}

// base is a minimal valid configuration; edit replaces one line.
const base = `name = "g"
remote_domains = ["b.example"]
[local_domains]
"a.example" = "127.0.0.1:5269"
[link]
dial = "127.0.0.1:17000"
key_file = "k"
peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="
[s2s]
dialback_secret = "0123456789abcdef"
`

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name    string
		old     string // line of base to replace ("" appends to [s2s])
		new     string
		wantErr string // "" means valid
	}{
		{"no name", `name = "g"`, ``, `config: t.toml: name: required`},
		{"bad name", `name = "g"`, `name = "a b"`, `config: t.toml:1: name: "a b": use only`},
		{"empty state dir", `name = "g"`, "name = \"g\"\nstate_dir = \"\"", `t.toml:2: state_dir: must not be empty`},
		{"log level", `name = "g"`, "name = \"g\"\nlog_level = \"loud\"", `t.toml:2: log_level: "loud" is not one of`},
		{"log level ok", `name = "g"`, "name = \"g\"\nlog_level = \"debug\"", ``},
		{"admin bad", `name = "g"`, "name = \"g\"\nadmin_listen = \"localhost\"", `t.toml:2: admin_listen: "localhost" is not host:port`},
		{"admin port 0", `name = "g"`, "name = \"g\"\nadmin_listen = \"127.0.0.1:0\"", ``},
		{"summary off", `name = "g"`, "name = \"g\"\nsummary_interval = \"0s\"", ``},
		{"summary int 0", `name = "g"`, "name = \"g\"\nsummary_interval = 0", ``},
		{"summary negative", `name = "g"`, "name = \"g\"\nsummary_interval = \"-1s\"", `t.toml:2: summary_interval: -1s is negative`},
		{"summary too short", `name = "g"`, "name = \"g\"\nsummary_interval = \"10ms\"", `summary_interval: 10ms is out of range (0 = off, or 1s..24h0m0s)`},
		{"summary bare int", `name = "g"`, "name = \"g\"\nsummary_interval = 5", `t.toml:2: summary_interval: "5" is not a duration`},
		{"no remote", `remote_domains = ["b.example"]`, ``, `t.toml: remote_domains: at least one remote domain`},
		{"empty remote", `remote_domains = ["b.example"]`, `remote_domains = []`, `t.toml:2: remote_domains: at least one`},
		{"remote twice", `remote_domains = ["b.example"]`, `remote_domains = ["b.example", "b.example"]`, `t.toml:2: remote_domains: "b.example" is listed twice`},
		{"remote jid", `remote_domains = ["b.example"]`, `remote_domains = ["u@b.example"]`, `remote_domains: "u@b.example" is not a domain`},
		{"remote invalid", `remote_domains = ["b.example"]`, `remote_domains = ["b..example"]`, `remote_domains: "b..example" is not a valid domain`},
		{"remote leading dot", `remote_domains = ["b.example"]`, `remote_domains = [".b.example"]`, `empty label`},
		{"remote idna", `remote_domains = ["b.example"]`, `remote_domains = ["xn--mnchen-3ya.de"]`, `write "münchen.de"`},
		{"remote unicode", `remote_domains = ["b.example"]`, `remote_domains = ["münchen.de"]`, ``},
		{"remote trailing dot", `remote_domains = ["b.example"]`, `remote_domains = ["b.example."]`, `not in canonical form`},
		{"no local", `"a.example" = "127.0.0.1:5269"`, ``, `t.toml:3: local_domains: at least one local domain`},
		{"local port 0", `"a.example" = "127.0.0.1:5269"`, `"a.example" = "127.0.0.1:0"`, `t.toml:4: local_domains."a.example": "127.0.0.1:0": port 0 is only allowed for listen`},
		{"local value type", `"a.example" = "127.0.0.1:5269"`, `"a.example" = 5269`, `t.toml:4: local_domains."a.example": value is a TOML integer, want string`},
		{"remote not array", `remote_domains = ["b.example"]`, `remote_domains = "b.example"`, `t.toml:2: remote_domains: value is a TOML string, want slice`},
		{"link not table", `name = "g"`, "name = \"g\"\nlink = 1", `t.toml:6: Key 'link' has already been defined`},
		{"local inline", "[local_domains]\n\"a.example\" = \"127.0.0.1:5269\"", `local_domains = { "a.example" = "h:0" }`, `t.toml:3: local_domains."a.example": "h:0": port 0`},
		{"local no host", `"a.example" = "127.0.0.1:5269"`, `"a.example" = ":5269"`, `has no host`},
		{"local port big", `"a.example" = "127.0.0.1:5269"`, `"a.example" = "h:65536"`, `port "65536" is not a number 1..65535`},
		{"no link addr", `dial = "127.0.0.1:17000"`, ``, `t.toml:5: link: set link.listen, link.dial or both`},
		{"listen port 0", `dial = "127.0.0.1:17000"`, `listen = "127.0.0.1:0"`, ``},
		{"listen and dial", `dial = "127.0.0.1:17000"`, "dial = \"h:1\"\nlisten = \":1\"", ``},
		{"dial port 0", `dial = "127.0.0.1:17000"`, `dial = "127.0.0.1:0"`, `t.toml:6: link.dial: "127.0.0.1:0": port 0`},
		{"transport", `dial = "127.0.0.1:17000"`, "dial = \"h:1\"\ntransport = \"udp\"", `t.toml:7: link.transport: "udp" is not a transport`},
		{"no key file", `key_file = "k"`, ``, `t.toml: link.key_file: required`},
		{"no peer key", `peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="`, ``, `t.toml: link.peer_key: required`},
		{"bad peer key", `peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="`, `peer_key = "ed25519:AAAA"`, `t.toml:8: link.peer_key: linkkey: public key "ed25519:AAAA": 3 bytes, want 32`},
		{"peer key prefix", `peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="`, `peer_key = "rsa:AAAA"`, `does not start with "ed25519:"`},
		{"rate negative", `key_file = "k"`, "key_file = \"k\"\nrate_bps = -1", `t.toml:8: link.rate_bps: -1 is out of range`},
		{"rate ok", `key_file = "k"`, "key_file = \"k\"\nrate_bps = 2400", ``},
		{"batch window max", `key_file = "k"`, "key_file = \"k\"\nbatch_window = \"10s\"", ``},
		{"batch window zero", `key_file = "k"`, "key_file = \"k\"\nbatch_window = \"0s\"", ``},
		{"batch window big", `key_file = "k"`, "key_file = \"k\"\nbatch_window = \"11s\"", `t.toml:8: link.batch_window: 11s is out of range`},
		{"batch bytes max", `key_file = "k"`, "key_file = \"k\"\nmax_batch_bytes = 1048576", ``},
		{"batch bytes big", `key_file = "k"`, "key_file = \"k\"\nmax_batch_bytes = 1048577", `link.max_batch_bytes: 1048577 is out of range`},
		{"reconnect zero", `key_file = "k"`, "key_file = \"k\"\nreconnect_min = \"0s\"", `t.toml:8: link.reconnect_min: must be more than 0`},
		{"reconnect order", `key_file = "k"`, "key_file = \"k\"\nreconnect_min = \"5s\"\nreconnect_max = \"4s\"", `t.toml:9: link.reconnect_max: 4s is less than link.reconnect_min (5s)`},
		{"link keepalive off", `key_file = "k"`, "key_file = \"k\"\nkeepalive = \"0s\"", ``},
		{"link quic", `key_file = "k"`, "key_file = \"k\"\ntransport = \"quic\"", ``},
		{"link datagram", `key_file = "k"`, "key_file = \"k\"\ntransport = \"datagram\"", ``},
		{"spool tiny", `key_file = "k"`, "key_file = \"k\"\nspool_max_bytes = 1000", `link.spool_max_bytes: 1000 is out of range`},
		{"sender share over spool", `key_file = "k"`, "key_file = \"k\"\nspool_max_bytes = 65536\nsender_max_bytes = 65537", `link.sender_max_bytes: 65537 is out of range (1024..link.spool_max_bytes = 65536; 0: a quarter of it)`},
		{"sender share ok", `key_file = "k"`, "key_file = \"k\"\nsender_max_bytes = 1048576", ``},
		{"spool sync", `key_file = "k"`, "key_file = \"k\"\nspool_sync = \"sometimes\"", `link.spool_sync: "sometimes" is not one of batch, always, none, off`},
		{"max age zero", `key_file = "k"`, "key_file = \"k\"\nmax_age = \"0s\"", `link.max_age: must be more than 0`},
		{"max age ok", `key_file = "k"`, "key_file = \"k\"\nmax_age = \"1h\"\nspool_sync = \"always\"", ``},
		{"link keepalive tiny", `key_file = "k"`, "key_file = \"k\"\nkeepalive = \"1ms\"", `link.keepalive: 1ms is out of range`},
		{"no secret", `dialback_secret = "0123456789abcdef"`, ``, `t.toml: s2s.dialback_secret: required`},
		{"short secret", `dialback_secret = "0123456789abcdef"`, `dialback_secret = "0123456789abcde"`, `t.toml:10: s2s.dialback_secret: is 15 characters, want at least 16`},
		{"s2s listen", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\nlisten = \"5269\"", `t.toml:11: s2s.listen: "5269" is not host:port`},
		{"cert only", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\ncert_file = \"c.pem\"", `t.toml:11: s2s.cert_file: is set without s2s.key_file`},
		{"key only", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\nkey_file = \"k.pem\"", `t.toml:11: s2s.key_file: is set without s2s.cert_file`},
		{"stanza size", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\nmax_stanza_size = 1023", `t.toml:11: s2s.max_stanza_size: 1023 is out of range (1024..16777216)`},
		{"connect timeout 0", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\nconnect_timeout = \"0s\"", `s2s.connect_timeout: must be more than 0`},
		{"idle never", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\nidle_timeout = \"0s\"", ``},
		{"queue 0", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\nqueue_limit = 0", `t.toml:11: s2s.queue_limit: 0 is out of range`},
		{"dotted key line", `dialback_secret = "0123456789abcdef"`, "dialback_secret = \"0123456789abcdef\"\n[other]\nx = 1", `t.toml:11: unknown key "other"`},
		{"top-level typo", `name = "g"`, "name = \"g\"\nbatch_window = \"1s\"", `t.toml:2: unknown key "batch_window" (did you mean "link.batch_window"?)`},
		{"far-off key", `name = "g"`, "name = \"g\"\nzzzzzz = 1", `t.toml:2: unknown key "zzzzzz"`},
		{"inline table", `dial = "127.0.0.1:17000"`, "dial = \"h:1\"\nx = { y = 1 }", `t.toml:7: unknown key "link.x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old+"\n") {
				t.Fatalf("base has no line %q", tt.old)
			}
			repl := tt.new
			if repl != "" {
				repl += "\n"
			}
			data := strings.Replace(base, tt.old+"\n", repl, 1)
			_, err := Parse([]byte(data), "t.toml")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v\n%s", err, data)
			case tt.wantErr != "" && err == nil:
				t.Errorf("accepted, want error %q\n%s", tt.wantErr, data)
			case err != nil && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error\n got %v\nwant ...%s...\n%s", err, tt.wantErr, data)
			}
		})
	}
}

func TestFarOffKeyHasNoSuggestion(t *testing.T) {
	if s := suggest("zzzzzz"); s != "" {
		t.Errorf("suggest(zzzzzz) = %q", s)
	}
	if s := suggest("s2s.dialback_secert"); s != "s2s.dialback_secret" {
		t.Errorf("suggest(s2s.dialback_secert) = %q", s)
	}
	if s := suggest("link.cert_file"); s != "s2s.cert_file" {
		t.Errorf("suggest(link.cert_file) = %q", s)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	err := c.Validate()
	if err == nil || err.Error() != "config: name: required (a short name for this gateway, used in logs and metrics)" {
		t.Errorf("Validate() = %v", err)
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Errorf("UnmarshalText(1m30s) = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil || !strings.HasPrefix(err.Error(), `config: "soon" is not a duration`) {
		t.Errorf("UnmarshalText(soon) error = %v", err)
	}
	b, err := D(250 * time.Millisecond).MarshalText()
	if err != nil || string(b) != "250ms" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
}

func TestLoadResolvesAbsoluteAndCert(t *testing.T) {
	dir := t.TempDir()
	priv, err := linkkey.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := linkkey.MarshalPrivateKey(priv)
	keyPath := filepath.Join(dir, "abs.key")
	if err := os.WriteFile(keyPath, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(base, `key_file = "k"`, `key_file = "`+keyPath+`"`, 1)
	data = strings.Replace(data, `name = "g"`, "name = \"g\"\nstate_dir = \"/var/lib/isthmus\"", 1)
	sub := filepath.Join(dir, "etc")
	os.Mkdir(sub, 0o755)
	path := filepath.Join(sub, "g.toml")
	os.WriteFile(path, []byte(data), 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Link.KeyFile != keyPath || c.StateDir != "/var/lib/isthmus" {
		t.Errorf("absolute paths changed: %q %q", c.Link.KeyFile, c.StateDir)
	}

	// A cert/key pair that does not load is reported against s2s.cert_file.
	data2 := data + "cert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n"
	os.WriteFile(path, []byte(data2), 0o644)
	_, err = Load(path)
	want := "config: " + path + ":12: s2s.cert_file: open " + filepath.Join(sub, "cert.pem")
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load with missing cert = %v, want %s...", err, want)
	}

	// s2s.ca_file is resolved like the other paths and must hold a
	// certificate.
	os.WriteFile(filepath.Join(sub, "ca.pem"), []byte("not PEM\n"), 0o644)
	os.WriteFile(path, []byte(data+"ca_file = \"ca.pem\"\n"), 0o644)
	_, err = Load(path)
	want = "config: " + path + ":12: s2s.ca_file: " + filepath.Join(sub, "ca.pem") + " holds no PEM certificate"
	if err == nil || err.Error() != want {
		t.Errorf("Load with a bad ca_file = %v, want %s", err, want)
	}

	if _, err := Load(filepath.Join(dir, "nope.toml")); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestPresenceKeys(t *testing.T) {
	c, err := Parse([]byte(base), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Presence; !p.Enable || p.FanoutWindow.Duration != 30*time.Millisecond || p.ReprobeInterval.Duration != 10*time.Minute ||
		p.Timeout.Duration != 30*time.Minute || p.MaxEntries != 100000 || p.MaxBytes != 64<<20 || p.StateFile != "presence.json" {
		t.Errorf("presence defaults: %+v", p)
	}
	c, err = Parse([]byte(base+"\n[presence]\nenable = false\nreprobe_interval = \"1m\"\ntimeout = \"2m\"\nstate_file = \"\"\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Presence.Enable || c.Presence.Timeout.Duration != 2*time.Minute || c.Presence.StateFile != "" {
		t.Errorf("presence: %+v", c.Presence)
	}
	for _, tc := range []struct{ add, want string }{
		{"timeout = \"15m\"", "presence.timeout: 15m0s is out of range"},
		{"max_entries = 0", "presence.max_entries: 0 is out of range"},
		{"max_bytes = 1000", "presence.max_bytes: 1000 is out of range (65536..68719476736)"},
		{"state_file = \"../x\"", "presence.state_file"},
		{"fanout_window = \"0s\"", "presence.fanout_window: must be more than 0"},
		{"reprobe = \"1m\"", `unknown key "presence.reprobe"`},
	} {
		_, err := Parse([]byte(base+"\n[presence]\n"+tc.add+"\n"), "t.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.add, err, tc.want)
		}
	}
}

// TestValidateWithSupplied: a key or link address the program supplies
// stands in for its key, and only for that one.
func TestValidateWithSupplied(t *testing.T) {
	c := Default()
	c.Name = "a"
	c.LocalDomains = map[string]string{"a.test": "127.0.0.1:5269"}
	c.RemoteDomains = []string{"b.test"}
	c.Link.PeerKey = "ed25519:" + strings.Repeat("A", 43) + "="
	c.S2S.DialbackSecret = "a-secret-of-16-chars"
	for _, tc := range []struct {
		s    Supplied
		want string // prefix of the error; "" for none
	}{
		{Supplied{}, "config: link: set link.listen"},
		{Supplied{LinkDial: true}, "config: link.key_file: required"},
		{Supplied{LinkListener: true}, "config: link.key_file: required"},
		{Supplied{PrivateKey: true}, "config: link: set link.listen"},
		{Supplied{PrivateKey: true, LinkDial: true}, ""},
		{Supplied{PrivateKey: true, LinkListener: true}, ""},
	} {
		err := c.ValidateWith(tc.s)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("ValidateWith(%+v) = %v, want %q", tc.s, err, tc.want)
		}
	}
}
