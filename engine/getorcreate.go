package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kennel-cache/kennel/lockf"
)

// CreateOption adjusts one GetOrCreate call.
type CreateOption func(*createOptions)

type createOptions struct {
	fresh, grace time.Duration
	background   bool
}

// Fresh sets how long a created value stays fresh: GetOrCreate returns it
// without calling create until then. Zero means it stays fresh until it
// expires (Options.DefaultTTL, or never). Default: Options.FreshTime.
func Fresh(d time.Duration) CreateOption { return func(o *createOptions) { o.fresh = d } }

// Grace sets how long after its fresh time a value is still served while
// one caller regenerates it; it expires at the end of its grace. Zero means
// a value expires when it turns stale, so callers wait for the new one.
// Default: Options.GraceTime.
func Grace(d time.Duration) CreateOption { return func(o *createOptions) { o.grace = d } }

// InBackground makes the caller that finds a stale value regenerate it in a
// goroutine and return the stale value at once, like everyone else.
func InBackground() CreateOption { return func(o *createOptions) { o.background = true } }

// GetOrCreate returns the value of key, calling create to make it when there
// is none: the dogpile lock of DESIGN.md, across goroutines and processes.
//
//   - A fresh value is returned at once; no lock is taken.
//   - Without a value, the caller takes the key's lock, looks again, and if
//     there is still none calls create once and stores its result. Callers
//     that waited for the lock then find that value. If create fails,
//     nothing is stored, its caller gets its error, and the next waiter
//     tries in turn. ctx bounds the wait for the lock and is passed to
//     create.
//   - A stale value (past its fresh time, inside its grace) is regenerated
//     by exactly one caller, the one that gets the key's lock without
//     waiting; every other caller gets the stale value at once. With
//     InBackground the regenerating caller returns it at once too.
//
// A process that dies holding a key's lock releases it (the kernel drops
// its locks), and a waiter takes over. On a ReadOnly cache GetOrCreate
// returns stored values, fresh or stale, and ErrReadOnly instead of creating.
func (c *Cache) GetOrCreate(ctx context.Context, key []byte, create func(ctx context.Context) ([]byte, error), opts ...CreateOption) ([]byte, error) {
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	v, stale, err := c.getFresh(key)
	if err == nil && !stale {
		return v, nil
	}
	o := createOptions{fresh: c.opts.FreshTime, grace: c.opts.GraceTime}
	for _, opt := range opts {
		opt(&o)
	}
	if o.fresh < 0 || o.grace < 0 {
		return nil, fmt.Errorf("%w: fresh %v, grace %v", ErrInvalidTTL, o.fresh, o.grace)
	}
	switch {
	case err == nil:
		return c.regenerateStale(ctx, key, v, create, o)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	case c.opts.ReadOnly:
		return nil, ErrReadOnly
	}
	return c.createMissing(ctx, key, create, o)
}

// createMissing makes the value of a key that has none, under the key's lock.
func (c *Cache) createMissing(ctx context.Context, key []byte, create func(context.Context) ([]byte, error), o createOptions) ([]byte, error) {
	held, err := c.locks.Lock(ctx, lockf.KeyRange(key), lockf.Exclusive)
	if err != nil {
		return nil, c.lockError(key, err)
	}
	defer held.Unlock()
	// Whoever held the lock before may have stored the value.
	if v, _, err := c.getFresh(key); !errors.Is(err, ErrNotFound) {
		return v, err
	}
	return c.createAndStore(ctx, key, create, o)
}

// regenerateStale serves a stale value to everyone but the one caller that
// gets the key's lock at once, which regenerates it.
func (c *Cache) regenerateStale(ctx context.Context, key, stale []byte, create func(context.Context) ([]byte, error), o createOptions) ([]byte, error) {
	if c.opts.ReadOnly {
		c.staleServed.Add(1)
		return stale, nil
	}
	held, ok, err := c.locks.TryLock(lockf.KeyRange(key), lockf.Exclusive)
	if err != nil || !ok {
		if err != nil {
			c.log.Warn("cannot take a key's lock; serving its stale value", "err", err)
		}
		c.staleServed.Add(1)
		return stale, nil
	}
	// The previous holder may have just stored a fresh value.
	if v, isStale, err := c.getFresh(key); err == nil && !isStale {
		held.Unlock()
		return v, nil
	}
	if !o.background {
		defer held.Unlock()
		return c.createAndStore(ctx, key, create, o)
	}
	c.staleServed.Add(1)
	key = bytes.Clone(key)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer held.Unlock()
		if _, err := c.createAndStore(c.bgCtx, key, create, o); err != nil {
			c.log.Warn("background regeneration failed; the stale value stays", "key", key, "err", err)
		}
	}()
	return stale, nil
}

// createAndStore calls create and stores its value. Callers hold the key's
// lock.
func (c *Cache) createAndStore(ctx context.Context, key []byte, create func(context.Context) ([]byte, error), o createOptions) ([]byte, error) {
	c.creates.Add(1)
	v, err := create(ctx)
	if err != nil {
		return nil, err
	}
	now := c.now()
	var expiry, fresh int64
	switch {
	case o.fresh == 0:
		expiry = c.expiry(c.opts.DefaultTTL)
	case o.grace == 0:
		expiry = now + int64(o.fresh)
	default:
		expiry, fresh = now+int64(o.fresh)+int64(o.grace), now+int64(o.fresh)
	}
	if err := c.store(key, v, expiry, fresh); err != nil {
		return nil, err
	}
	return v, nil
}

// getFresh is Get that also says whether the value is stale.
func (c *Cache) getFresh(key []byte) (v []byte, stale bool, err error) {
	v, fresh, err := c.get(key)
	if err != nil {
		return nil, false, err
	}
	return v, fresh != 0 && c.now() >= fresh, nil
}

// KeyLock is a held per-key lock (see Lock).
type KeyLock struct{ held *lockf.Held }

// Unlock releases the lock. It may be called once, from any goroutine.
// After the cache's Close, which released the lock, it returns ErrClosed.
func (l *KeyLock) Unlock() error {
	err := l.held.Unlock()
	if errors.Is(err, lockf.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Lock takes key's lock: the one GetOrCreate holds while it creates the
// key's value, shared by the goroutines of every process using the cache.
// It waits until the lock is free or ctx is done. Use it to make your own
// check-then-write steps on a key atomic with respect to GetOrCreate and
// other Lock holders; Set and Get do not take it.
func (c *Cache) Lock(ctx context.Context, key []byte) (*KeyLock, error) {
	if c.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	held, err := c.locks.Lock(ctx, lockf.KeyRange(key), lockf.Exclusive)
	if err != nil {
		return nil, c.lockError(key, err)
	}
	return &KeyLock{held: held}, nil
}

func (c *Cache) lockError(key []byte, err error) error {
	if errors.Is(err, lockf.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("kennel: lock key %q: %w", key, err)
}
