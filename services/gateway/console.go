package gateway

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// consoleFiles is the web console: plain ES modules, CSS and HTML, no build
// step, every asset in the binary.
//
//go:embed console
var consoleFiles embed.FS

// asset is one embedded console file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// consoleHandler serves the console's files; "/" is index.html and so is
// any path without an extension that names no file (the console's own
// views). Responses are revalidated (ETag) on every load, so a new binary's
// console is seen at once.
func consoleHandler() (http.Handler, error) {
	assets := map[string]asset{}
	err := fs.WalkDir(consoleFiles, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := consoleFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[strings.TrimPrefix(p, "console")] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: read embedded console: %w", err)
	}
	index, ok := assets["/index.html"]
	if !ok {
		return nil, errors.New("gateway: embedded console has no index.html")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			if path.Ext(r.URL.Path) != "" {
				http.NotFound(w, r)
				return
			}
			a = index
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(a.body)
	}), nil
}
