package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strconv"
	"sync"
)

// maxSignerKeys bounds the parsed secrets a Client keeps; beyond it the
// cache starts over (secrets rotate rarely, hubs have one or two each).
const maxSignerKeys = 4096

// signer computes webhook-signature headers like SignatureHeader, without
// parsing each secret and keying a new HMAC for every request: it keeps one
// pool of keyed HMACs per secret. The result is byte for byte the same.
type signer struct {
	mu   sync.RWMutex
	keys map[string]*signKey
}

type signKey struct {
	pool sync.Pool // of hash.Hash keyed with the secret
}

func (s *signer) key(secret string) (*signKey, error) {
	s.mu.RLock()
	k := s.keys[secret]
	s.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	raw, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	k = &signKey{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, raw) }}}
	s.mu.Lock()
	if s.keys == nil || len(s.keys) >= maxSignerKeys {
		s.keys = make(map[string]*signKey)
	}
	s.keys[secret] = k
	s.mu.Unlock()
	return k, nil
}

// header returns "v1,<sig>" for every secret, space separated.
func (s *signer) header(secrets []string, id string, unix int64, body []byte) (string, error) {
	const sigLen = 3 + 44 // "v1," + base64 of 32 bytes
	out := make([]byte, 0, len(secrets)*(sigLen+1))
	var sum [sha256.Size]byte
	var scratch [24]byte
	for i, secret := range secrets {
		k, err := s.key(secret)
		if err != nil {
			return "", err
		}
		h := k.pool.Get().(hash.Hash)
		h.Reset()
		h.Write([]byte(id))
		ts := append(scratch[:0], '.')
		ts = strconv.AppendInt(ts, unix, 10)
		ts = append(ts, '.')
		h.Write(ts)
		h.Write(body)
		mac := h.Sum(sum[:0])
		k.pool.Put(h)
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, mac)
	}
	return string(out), nil
}
