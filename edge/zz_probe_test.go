package edge

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

func TestProbeEarlyAnswers(t *testing.T) {
	var served atomic.Int64
	addr := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	var dials atomic.Int64
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	tr.DialTLS = func(network, a string, cfg *tls.Config) (net.Conn, error) {
		dials.Add(1)
		return tls.Dial(network, a, cfg)
	}
	cl := &http.Client{Transport: tr}
	body := bytes.Repeat([]byte("x"), 8<<20)
	fails := 0
	for range 30 {
		resp, err := cl.Post("https://"+addr+"/up", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			fails++
			t.Log(err)
			continue
		}
		resp.Body.Close()
	}
	t.Logf("served %d, dials %d, fails %d", served.Load(), dials.Load(), fails)
}
