package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written in TOML as a string such as "250ms",
// "30s" or "5m" (time.ParseDuration syntax). The integer 0 is accepted too.
type Duration struct{ time.Duration }

// D is a shorthand for Duration{d}.
func D(d time.Duration) Duration { return Duration{d} }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("config: %q is not a duration (write e.g. \"250ms\", \"30s\", \"5m\")", text)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// Config is one gateway's configuration. See docs/configuration.md.
type Config struct {
	Name            string            `toml:"name"`             // gateway name, used in logs/metrics (required)
	StateDir        string            `toml:"state_dir"`        // spool/state directory (default "state" next to the file)
	AdminListen     string            `toml:"admin_listen"`     // HTTP admin address (stats, later metrics); "" = off
	LogLevel        string            `toml:"log_level"`        // debug|info|warn|error (default info)
	SummaryInterval Duration          `toml:"summary_interval"` // periodic one-line stats log (default 5m, 0 = off)
	LocalDomains    map[string]string `toml:"local_domains"`    // domain hosted on this side -> "host:port" of the S2S server that hosts it (at least one)
	RemoteDomains   []string          `toml:"remote_domains"`   // domains reached through the peer (at least one; disjoint from local)
	Link            Link              `toml:"link"`
	S2S             S2S               `toml:"s2s"`
	Presence        Presence          `toml:"presence"`
	Capture         Capture           `toml:"capture"`
}

// Capture records the raw S2S streams the gateway receives from local
// servers, per connection and direction, for `isthmus bench` and
// `isthmus train-dict`.
type Capture struct {
	Dir string `toml:"dir"` // directory for capture files, relative to the config file's dir; "" = off (default)
}

// Link configures the link to the peer gateway.
type Link struct {
	Listen         string   `toml:"listen"`           // address to accept the peer on
	Dial           string   `toml:"dial"`             // address of the peer; at least one of listen/dial
	Transport      string   `toml:"transport"`        // "tcp" (default), "quic" or "datagram"
	KeyFile        string   `toml:"key_file"`         // this gateway's private key (PEM, from `isthmus keygen`), relative to the config file's dir
	PeerKey        string   `toml:"peer_key"`         // the peer's public key "ed25519:BASE64" (required)
	RateBPS        int64    `toml:"rate_bps"`         // link rate bit/s used for pacing; 0 = unpaced (default 0)
	BatchWindow    Duration `toml:"batch_window"`     // default 50ms; 0..10s
	PresenceWindow Duration `toml:"presence_window"`  // default 1s; 0..60s; shorter than batch_window acts as batch_window
	MaxBatchBytes  int      `toml:"max_batch_bytes"`  // default 16384; 256..1<<20
	Keepalive      Duration `toml:"keepalive"`        // default 15m; 0 = off
	ReconnectMin   Duration `toml:"reconnect_min"`    // default 1s
	ReconnectMax   Duration `toml:"reconnect_max"`    // default 60s; >= reconnect_min
	SpoolMaxBytes  int64    `toml:"spool_max_bytes"`  // bytes of stanzas held for the peer; default 64 MiB; 64 KiB..64 GiB
	ProbeMax       Duration `toml:"probe_max"`        // datagram transport: longest gap between probes into an outage; default 10s; 1s..10m
	SenderMaxBytes int64    `toml:"sender_max_bytes"` // of those, one sender's (bare JID) at most; default (0) spool_max_bytes/4; 1 KiB..spool_max_bytes
	SpoolSync      string   `toml:"spool_sync"`       // fsync policy: "batch" (default), "always", "none"; "off" = no disk spool
	MaxAge         Duration `toml:"max_age"`          // iqs/messages not delivered by then are bounced; default 24h; 1s..30 days
	// LearnDictBytes bounds the sample of recent traffic, per direction,
	// from which both gateways learn the dictionary a new epoch starts
	// with (in state_dir/learn); default 512 KiB; 256 KiB..64 MiB; 0 = off.
	// Both sides must set the same value.
	LearnDictBytes int `toml:"learn_dict_bytes"`
}

// S2S configures the XMPP server-to-server edge towards local servers.
type S2S struct {
	Listen         string   `toml:"listen"`          // S2S listen address local servers connect to (default "0.0.0.0:5269")
	DialbackSecret string   `toml:"dialback_secret"` // XEP-0185 secret, >= 16 chars (required)
	CertFile       string   `toml:"cert_file"`       // optional PEM cert for STARTTLS (both or neither with key_file)
	KeyFile        string   `toml:"key_file"`
	MaxStanzaSize  int      `toml:"max_stanza_size"` // default 262144; 1024..16<<20
	ConnectTimeout Duration `toml:"connect_timeout"` // default 30s
	Keepalive      Duration `toml:"keepalive"`       // whitespace keepalive interval, default 60s; 0 = off
	IdleTimeout    Duration `toml:"idle_timeout"`    // default 10m; 0 = never
	QueueLimit     int      `toml:"queue_limit"`     // stanzas waiting per outgoing stream while it connects, default 1000
	// Limits on what local servers send (issue 6; see docs/configuration.md).
	MaxDepth           int      `toml:"max_depth"`             // XML nesting inside a stanza, default 64; 4..1024
	MaxAttributes      int      `toml:"max_attributes"`        // attributes per element, default 64; 8..4096
	MaxTextSize        int      `toml:"max_text_size"`         // bytes of one text node or attribute value, default 131072; 256..max_stanza_size
	MaxConnsPerAddress int      `toml:"max_conns_per_address"` // inbound connections open at once per source IP, default 64; 0 = off
	StanzaRate         float64  `toml:"stanza_rate"`           // stanzas/s per inbound stream (throttled beyond), default 200; 0 = off
	StanzaBurst        int      `toml:"stanza_burst"`          // burst above stanza_rate, default 2000; 1..1000000
	AllowFrom          []string `toml:"allow_from"`            // source addresses (IPs or CIDR prefixes) local servers may connect from; empty = any
	RequireTLS         bool     `toml:"require_tls"`           // STARTTLS on every S2S connection, both ways (refuse dialback before it; fail outgoing streams without it); needs cert_file
	CAFile             string   `toml:"ca_file"`               // PEM CA certificates the local servers' certificates are verified against; "" = not verified (dialback authenticates them)
}

// Presence configures the presence mirror (package presence).
type Presence struct {
	Enable          bool     `toml:"enable"`           // default true
	FanoutWindow    Duration `toml:"fanout_window"`    // default 30ms; 1ms..10s
	RefreshInterval Duration `toml:"refresh_interval"` // default 5m; 1s..24h
	ReprobeInterval Duration `toml:"reprobe_interval"` // default 10m; 1s..24h
	Timeout         Duration `toml:"timeout"`          // default 30m; 2×reprobe_interval..168h
	MaxEntries      int      `toml:"max_entries"`      // default 100000; 1..10000000
	MaxBytes        int64    `toml:"max_bytes"`        // bytes of presence per table; default 64 MiB; 64 KiB..64 GiB
	StateFile       string   `toml:"state_file"`       // default "presence.json", relative to state_dir; "" = not persisted
}

// Default returns a configuration with every default filled in. Name,
// LocalDomains, RemoteDomains, Link.Listen/Dial, Link.KeyFile, Link.PeerKey and
// S2S.DialbackSecret have no default and must be set.
func Default() Config {
	return Config{
		StateDir:        "state",
		LogLevel:        "info",
		SummaryInterval: D(5 * time.Minute),
		Link: Link{
			Transport:      "tcp",
			BatchWindow:    D(50 * time.Millisecond),
			PresenceWindow: D(time.Second),
			MaxBatchBytes:  16384,
			Keepalive:      D(15 * time.Minute),
			ReconnectMin:   D(time.Second),
			ReconnectMax:   D(60 * time.Second),
			SpoolMaxBytes:  64 << 20,
			ProbeMax:       D(10 * time.Second),
			SpoolSync:      "batch",
			MaxAge:         D(24 * time.Hour),
			LearnDictBytes: 512 << 10,
		},
		S2S: S2S{
			Listen:         "0.0.0.0:5269",
			MaxStanzaSize:  262144,
			ConnectTimeout: D(30 * time.Second),
			Keepalive:      D(60 * time.Second),
			IdleTimeout:    D(10 * time.Minute),
			QueueLimit:     1000,

			MaxDepth:           64,
			MaxAttributes:      64,
			MaxTextSize:        131072,
			MaxConnsPerAddress: 64,
			StanzaRate:         200,
			StanzaBurst:        2000,
		},
		Presence: Presence{
			Enable:          true,
			FanoutWindow:    D(30 * time.Millisecond),
			RefreshInterval: D(5 * time.Minute),
			ReprobeInterval: D(10 * time.Minute),
			Timeout:         D(30 * time.Minute),
			MaxEntries:      100000,
			MaxBytes:        64 << 20,
			StateFile:       "presence.json",
		},
	}
}

// Parse decodes a TOML configuration, fills defaults for absent keys,
// rejects unknown keys and validates the result. name (usually the file
// name) appears in errors. Relative paths are left as written.
func Parse(data []byte, name string) (*Config, error) {
	c, _, err := parse(data, name)
	return c, err
}

func parse(data []byte, name string) (*Config, keyLines, error) {
	lines := scanKeyLines(data)
	c := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return nil, lines, decodeError(err, name, lines)
	}
	if un := md.Undecoded(); len(un) > 0 {
		k := un[0].String()
		msg := fmt.Sprintf("unknown key %q", k)
		if s := suggest(k); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return nil, lines, &Error{File: name, Line: lines.near(k), Key: k, Msg: msg, Err: ErrUnknownKey}
	}
	if err := c.Validate(); err != nil {
		return nil, lines, locate(err, name, lines)
	}
	return &c, lines, nil
}

// Load reads the file at path and parses it (see [Parse]). It then resolves
// link.key_file, s2s.cert_file, s2s.key_file, s2s.ca_file and state_dir
// relative to the file's directory, and checks that the key file (and the
// certificate pair and CA file, if set) can be loaded and that peer_key is
// not this gateway's own key.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, lines, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.StateDir = rel(c.StateDir)
	c.Link.KeyFile = rel(c.Link.KeyFile)
	c.S2S.CertFile = rel(c.S2S.CertFile)
	c.S2S.KeyFile = rel(c.S2S.KeyFile)
	c.S2S.CAFile = rel(c.S2S.CAFile)
	c.Capture.Dir = rel(c.Capture.Dir)

	fail := func(key string, err error) error {
		return &Error{File: path, Line: lines.exact(key), Key: key, Msg: err.Error(), Err: err}
	}
	priv, err := linkkey.LoadPrivateKey(c.Link.KeyFile)
	if err != nil {
		return nil, fail("link.key_file", err)
	}
	peer, err := linkkey.ParsePublicKey(c.Link.PeerKey)
	if err != nil { // Validate has parsed it already
		return nil, fail("link.peer_key", err)
	}
	if peer.Equal(priv.Public()) {
		return nil, fail("link.peer_key", fmt.Errorf("is this gateway's own public key (from %s); put the peer's key here", c.Link.KeyFile))
	}
	if c.S2S.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.S2S.CertFile, c.S2S.KeyFile); err != nil {
			return nil, fail("s2s.cert_file", err)
		}
	}
	if c.S2S.CAFile != "" {
		if _, err := LoadCAFile(c.S2S.CAFile); err != nil {
			return nil, fail("s2s.ca_file", err)
		}
	}
	return c, nil
}

// PrivateKey loads this gateway's private key from Link.KeyFile.
func (c *Config) PrivateKey() (ed25519.PrivateKey, error) {
	k, err := linkkey.LoadPrivateKey(c.Link.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("config: link.key_file: %w", err)
	}
	return k, nil
}

// PeerPublicKey parses Link.PeerKey.
func (c *Config) PeerPublicKey() (ed25519.PublicKey, error) {
	k, err := linkkey.ParsePublicKey(c.Link.PeerKey)
	if err != nil {
		return nil, fmt.Errorf("config: link.peer_key: %w", err)
	}
	return k, nil
}

// LoadCAFile reads PEM CA certificates (s2s.ca_file) into a pool. A file
// without any certificate is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
