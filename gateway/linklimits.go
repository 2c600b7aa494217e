package gateway

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// linkLimits are the local S2S input limits ([s2s] max_stanza_size,
// max_depth, max_attributes, max_text_size) applied to the stanzas that
// come over the link, so the local servers get nothing from the peer they
// would not take from each other (issue 10, defect 5).
type linkLimits struct{ size, depth, attrs, text int }

func localLimits(cfg *config.Config) linkLimits {
	l := linkLimits{cfg.S2S.MaxStanzaSize, cfg.S2S.MaxDepth, cfg.S2S.MaxAttributes, cfg.S2S.MaxTextSize}
	if l.size <= 0 {
		l.size = 262144
	}
	if l.depth <= 0 {
		l.depth = 64
	}
	if l.attrs <= 0 {
		l.attrs = 64
	}
	if l.text <= 0 || l.text > l.size {
		l.text = l.size
	}
	return l
}

// check returns which limit raw (one stanza, as s2s.ParseStanza read it)
// is over, or nil.
func (l linkLimits) check(raw []byte) error {
	if len(raw) > l.size {
		return fmt.Errorf("stanza of %d bytes, max_stanza_size %d", len(raw), l.size)
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	depth := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the stanza: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth > l.depth {
				return fmt.Errorf("nesting deeper than max_depth %d", l.depth)
			}
			if len(t.Attr) > l.attrs {
				return fmt.Errorf("<%s> has %d attributes, max_attributes %d", t.Name.Local, len(t.Attr), l.attrs)
			}
			for _, a := range t.Attr {
				if len(a.Value) > l.text {
					return fmt.Errorf("attribute %s of %d bytes, max_text_size %d", a.Name.Local, len(a.Value), l.text)
				}
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if len(t) > l.text {
				return fmt.Errorf("text of %d bytes, max_text_size %d", len(t), l.text)
			}
		}
	}
}
