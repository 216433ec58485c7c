package configsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Store keeps hub configurations in Redis under <prefix>{cfg}::
//
//	<p>{cfg}:hub:<hub_id>  hash {v: version, cfg: HubConfig as protobuf}
//	<p>{cfg}:hubs          set of every configured hub id
//	<p>{cfg}:feed          stream of changes {hub, version, kind}, trimmed to ~FeedMaxLen
//	<p>{cfg}:epoch         random value; a new one means Redis lost its data
//	<p>{cfg}:testrate:<hub_id>:<minute>  test events the hub sent in that minute (TakeTestEvent; expires)
//
// Writes are compare-and-set on the version in one Lua script that also adds
// the hub to the set and appends to the feed, so concurrent writers (any
// number of configsvc replicas) never lose an update. The script needs the
// hub's key, the set and the one feed of every hub together, so on a Redis
// Cluster all of them share the hash tag {cfg} and live in one slot: hub
// configs are small and rarely written, and the services read them from
// their caches, so one shard holds them all. Store is safe for concurrent
// use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	maxLen int64
	now    func() time.Time
}

// maxUpdateAttempts bounds the compare-and-set retries of one Update.
const maxUpdateAttempts = 64

// casScript writes a new version of a hub only if the stored version is the
// expected one, and adds the hub to the set of configured hubs, or removes
// it (a deletion).
//
//	KEYS[1] hub hash, KEYS[2] hub set, KEYS[3] feed stream
//	ARGV[1] expected version, ARGV[2] new version, ARGV[3] config bytes,
//	ARGV[4] hub id, ARGV[5] feed max length, ARGV[6] change kind,
//	ARGV[7] "1" to add the hub to the set, "0" to remove it
var casScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'cfg', ARGV[3])
if ARGV[7] == '1' then
  redis.call('SADD', KEYS[2], ARGV[4])
else
  redis.call('SREM', KEYS[2], ARGV[4])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'hub', ARGV[4], 'version', ARGV[2], 'kind', ARGV[6])
return 1
`)

// NewStore returns a Store whose keys start with prefix + "{cfg}:".
func NewStore(rdb redis.UniversalClient, prefix string, feedMaxLen int64, now func() time.Time) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("configsvc store: nil redis client")
	}
	if now == nil {
		now = time.Now
	}
	if feedMaxLen <= 0 {
		feedMaxLen = DefaultFeedMaxLen
	}
	return &Store{rdb: rdb, prefix: prefix + "{cfg}:", maxLen: feedMaxLen, now: now}, nil
}

func (s *Store) hubKey(hubID string) string { return s.prefix + "hub:" + hubID }
func (s *Store) hubsKey() string            { return s.prefix + "hubs" }
func (s *Store) feedKey() string            { return s.prefix + "feed" }
func (s *Store) epochKey() string           { return s.prefix + "epoch" }

func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: redis: %v", ErrUnavailable, op, err)
}

// Unconfigured is the configuration of a hub never written: disabled, no
// URLs, no secret, version 0.
func Unconfigured(hubID string) *hubhooksv1.HubConfig {
	return &hubhooksv1.HubConfig{HubId: hubID}
}

func decodeConfig(hubID string, raw string) (*hubhooksv1.HubConfig, error) {
	cfg := &hubhooksv1.HubConfig{}
	if err := proto.Unmarshal([]byte(raw), cfg); err != nil {
		return nil, fmt.Errorf("decode config of hub %s: %w", hubID, err)
	}
	return cfg, nil
}

// Get returns a hub's configuration; a hub never configured reads as
// Unconfigured(hubID). Nothing is written.
func (s *Store) Get(ctx context.Context, hubID string) (*hubhooksv1.HubConfig, error) {
	raw, err := s.rdb.HGet(ctx, s.hubKey(hubID), "cfg").Result()
	if errors.Is(err, redis.Nil) {
		return Unconfigured(hubID), nil
	}
	if err != nil {
		return nil, unavailable("get hub config", err)
	}
	return decodeConfig(hubID, raw)
}

// GetMany returns the configurations of the configured hubs among hubIDs, in
// the order given; hubs never configured are left out.
func (s *Store) GetMany(ctx context.Context, hubIDs []string) ([]*hubhooksv1.HubConfig, error) {
	if len(hubIDs) == 0 {
		return nil, nil
	}
	out := make([]*hubhooksv1.HubConfig, 0, len(hubIDs))
	for chunk := range slices.Chunk(hubIDs, 500) {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(chunk))
		for i, id := range chunk {
			cmds[i] = pipe.HGet(ctx, s.hubKey(id), "cfg")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, unavailable("get hub configs", err)
		}
		for i, cmd := range cmds {
			raw, err := cmd.Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return nil, unavailable("get hub configs", err)
			}
			cfg, err := decodeConfig(chunk[i], raw)
			if err != nil {
				return nil, err
			}
			out = append(out, cfg)
		}
	}
	return out, nil
}

// All returns every configured hub, sorted by hub id.
func (s *Store) All(ctx context.Context) ([]*hubhooksv1.HubConfig, error) {
	ids, err := s.rdb.SMembers(ctx, s.hubsKey()).Result()
	if err != nil {
		return nil, unavailable("list hubs", err)
	}
	slices.Sort(ids)
	return s.GetMany(ctx, ids)
}

// Mutation changes next, a private copy of the current configuration
// (Unconfigured for a new hub). It returns whether anything changed; an
// error aborts the update and nothing is written.
type Mutation func(next *hubhooksv1.HubConfig) (changed bool, err error)

// Update applies fn to the hub's current configuration and stores the
// result as the next version, with updated_at = now, retrying fn on a fresh
// copy when another writer got there first. When fn changes nothing and the
// hub exists, nothing is written and the current configuration is returned.
// A hub's first write always creates it. wrote reports whether a new
// version was stored.
func (s *Store) Update(ctx context.Context, hubID, kind string, fn Mutation) (cfg *hubhooksv1.HubConfig, wrote bool, err error) {
	return s.write(ctx, hubID, kind, true, func(cur, next *hubhooksv1.HubConfig) (bool, error) {
		changed, err := fn(next)
		return changed || cur.GetVersion() == 0, err
	})
}

// Delete replaces the hub's configuration by an empty one (no URLs, no
// secrets, triggers off) as its next version, and takes the hub out of the
// set of configured hubs: watchers receive the empty version (and cancel
// what the hub had under way), snapshots no longer list it. The hash with
// the version stays, so that the hub's versions keep rising if it is
// configured again. wrote is false when there was nothing to delete (never
// configured, or deleted already).
func (s *Store) Delete(ctx context.Context, hubID string) (cfg *hubhooksv1.HubConfig, wrote bool, err error) {
	return s.write(ctx, hubID, KindHubDeleted, false, func(cur, next *hubhooksv1.HubConfig) (bool, error) {
		if cur.GetVersion() == 0 || isDeleted(cur) {
			return false, nil
		}
		proto.Reset(next)
		next.HubId = hubID
		return true, nil
	})
}

// isDeleted reports whether cfg is what Delete leaves: nothing but its id
// and version.
func isDeleted(cfg *hubhooksv1.HubConfig) bool {
	empty := &hubhooksv1.HubConfig{HubId: cfg.GetHubId(), Version: cfg.GetVersion(), UpdatedAt: cfg.GetUpdatedAt()}
	return proto.Equal(cfg, empty)
}

// write is Update and Delete: fn decides on a private copy whether to
// write a new version; member says whether the hub is in the set of
// configured hubs afterwards.
func (s *Store) write(ctx context.Context, hubID, kind string, member bool, fn func(cur, next *hubhooksv1.HubConfig) (bool, error)) (*hubhooksv1.HubConfig, bool, error) {
	set := "0"
	if member {
		set = "1"
	}
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		cur, err := s.Get(ctx, hubID)
		if err != nil {
			return nil, false, err
		}
		next := proto.Clone(cur).(*hubhooksv1.HubConfig)
		next.HubId = hubID
		write, err := fn(cur, next)
		if err != nil {
			return nil, false, err
		}
		if !write {
			return cur, false, nil
		}
		next.Version = cur.GetVersion() + 1
		next.UpdatedAt = timestamppb.New(s.now())
		b, err := proto.Marshal(next)
		if err != nil {
			return nil, false, fmt.Errorf("encode config of hub %s: %w", hubID, err)
		}
		ok, err := casScript.Run(ctx, s.rdb,
			[]string{s.hubKey(hubID), s.hubsKey(), s.feedKey()},
			cur.GetVersion(), next.Version, b, hubID, s.maxLen, kind, set,
		).Int()
		if err != nil {
			return nil, false, unavailable("write hub config", err)
		}
		if ok == 1 {
			return next, true, nil
		}
		// Lost the race: back off a little (more with every loss) and retry.
		d := time.Duration(mrand.Int64N(int64(time.Millisecond)*int64(attempt+1))) + 100*time.Microsecond
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("write hub config: %w", ctx.Err())
		case <-time.After(d):
		}
	}
	return nil, false, fmt.Errorf("%w: hub %s changed %d times while writing; try again", ErrConflict, hubID, maxUpdateAttempts)
}

// FeedEntry is one change of the feed.
type FeedEntry struct {
	// ID is the Redis stream entry id.
	ID string
	// HubID and Version name the change.
	HubID   string
	Version int64
	// Kind says what changed (events_enabled, url_added, ...).
	Kind string
}

// FeedLastID returns the id of the newest feed entry, "0-0" for an empty feed.
func (s *Store) FeedLastID(ctx context.Context) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.feedKey(), "+", "-", 1).Result()
	if err != nil {
		return "", unavailable("read feed position", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// ReadFeed returns the feed entries after lastID, waiting up to block for
// the first one; none when nothing arrived in time.
func (s *Store) ReadFeed(ctx context.Context, lastID string, block time.Duration, count int64) ([]FeedEntry, error) {
	res, err := s.rdb.XRead(ctx, &redis.XReadArgs{
		Streams: []string{s.feedKey(), lastID},
		Count:   count,
		Block:   block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("read feed", err)
	}
	var out []FeedEntry
	for _, st := range res {
		for _, m := range st.Messages {
			e := FeedEntry{ID: m.ID}
			e.HubID, _ = m.Values["hub"].(string)
			e.Kind, _ = m.Values["kind"].(string)
			if v, ok := m.Values["version"].(string); ok {
				e.Version, _ = strconv.ParseInt(v, 10, 64)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// FeedTrimmedAfter reports whether entries newer than lastID were trimmed
// from the feed before they could be read.
func (s *Store) FeedTrimmedAfter(ctx context.Context, lastID string) (bool, error) {
	info, err := s.rdb.XInfoStream(ctx, s.feedKey()).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return false, nil
		}
		return false, unavailable("inspect feed", err)
	}
	return compareStreamIDs(info.MaxDeletedEntryID, lastID) > 0, nil
}

// Epoch returns the store's epoch: a random value created when first asked
// for. A different epoch than before means Redis lost its data.
func (s *Store) Epoch(ctx context.Context) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if err := s.rdb.SetNX(ctx, s.epochKey(), hex.EncodeToString(b[:]), 0).Err(); err != nil {
		return "", unavailable("set epoch", err)
	}
	e, err := s.rdb.Get(ctx, s.epochKey()).Result()
	if err != nil {
		return "", unavailable("get epoch", err)
	}
	return e, nil
}

// compareStreamIDs compares Redis stream ids "ms-seq" numerically.
func compareStreamIDs(a, b string) int {
	am, as := parseStreamID(a)
	bm, bs := parseStreamID(b)
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}

func parseStreamID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}
