package gateway

import (
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

func TestLocalLimitsOnLinkStanzas(t *testing.T) {
	var cfg config.Config
	cfg.S2S.MaxStanzaSize, cfg.S2S.MaxDepth, cfg.S2S.MaxAttributes, cfg.S2S.MaxTextSize = 4096, 8, 4, 1024
	l := localLimits(&cfg)
	ok := `<message to='a@b' from='c@d' type='chat'><body>hi</body></message>`
	if err := l.check([]byte(ok)); err != nil {
		t.Fatalf("%s: %v", ok, err)
	}
	for _, bad := range []string{
		`<message to='a@b'><body>` + strings.Repeat("x", 5000) + `</body></message>`,
		`<message to='a@b'><body>` + strings.Repeat("x", 1025) + `</body></message>`,
		`<message to='a@b' id='` + strings.Repeat("x", 1025) + `'/>`,
		`<message to='a@b'>` + strings.Repeat("<a>", 8) + strings.Repeat("</a>", 8) + `</message>`,
		`<message to='a@b'><x a='1' b='2' c='3' d='4' e='5'/></message>`,
	} {
		if err := l.check([]byte(bad)); err == nil {
			t.Errorf("%.60s…: not refused", bad)
		} else {
			t.Logf("%.40s…: %v", bad, err)
		}
	}
}
