package engine

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"go.uber.org/zap"
)

// fullSync lists all containers (running or not), images and volumes and
// replaces the inventory with the result in one step. Any failed list fails
// the sync and leaves the inventory as it was.
func (w *Watcher) fullSync(ctx context.Context, cli dockerAPI) error {
	rctx, cancel := context.WithTimeout(ctx, w.opts.RequestTimeout)
	defer cancel()

	cl, err := cli.ContainerList(rctx, containerListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	il, err := cli.ImageList(rctx, imageListOptions{})
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	vl, err := cli.VolumeList(rctx, volumeListOptions{})
	if err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}

	cs := make(map[string]Container, len(cl))
	for _, s := range cl {
		cs[s.ID] = containerFromSummary(s)
	}
	ims := make(map[string]Image, len(il))
	for _, s := range il {
		for _, im := range imagesFromSummary(s) {
			ims[imageKey(im)] = im
		}
	}
	vs := make(map[string]Volume, len(vl.Volumes))
	for _, v := range vl.Volumes {
		if v.Name != "" { // skip a null entry (dockerd sends none)
			vs[v.Name] = volumeFrom(v)
		}
	}
	w.inv.replace(cs, ims, vs)
	w.logger.Debug("full sync done", zap.Int("containers", len(cs)), zap.Int("images", len(ims)), zap.Int("volumes", len(vs)))
	return nil
}

// Event actions that change what the inventory holds (behavior.md §7.2).
var (
	containerRefresh = map[eventAction]bool{
		actionCreate: true, actionStart: true, actionStop: true,
		actionDie: true, actionPause: true, actionUnpause: true,
		actionRestart: true, actionRename: true,
	}
	imageRefresh = map[eventAction]bool{
		actionPull: true, actionImport: true, actionLoad: true,
		actionTag: true, actionUntag: true,
	}
)

// handleEvent applies one engine event to the inventory. Failures are
// logged and dropped (the periodic resync heals them); a panic is recovered
// and logged, so one bad event cannot stop the watcher.
func (w *Watcher) handleEvent(ctx context.Context, cli dockerAPI, m eventMessage) {
	defer func() {
		if r := recover(); r != nil {
			w.logger.Error("panic while handling a docker event",
				zap.Any("panic", r), zap.String("type", string(m.Type)),
				zap.String("action", string(m.Action)), zap.String("id", m.Actor.ID),
				zap.ByteString("stack", debug.Stack()))
		}
	}()
	w.logger.Debug("docker event", zap.String("type", string(m.Type)), zap.String("action", string(m.Action)), zap.String("id", m.Actor.ID))
	rctx, cancel := context.WithTimeout(ctx, w.opts.RequestTimeout)
	defer cancel()
	var err error
	switch m.Type {
	case eventContainer:
		switch {
		case m.Action == actionDestroy:
			w.inv.removeContainer(m.Actor.ID)
		case containerRefresh[m.Action]:
			err = w.refreshContainer(rctx, cli, m.Actor.ID, m.Actor.Attributes["name"])
		}
	case eventImage:
		switch {
		case m.Action == actionDelete:
			w.inv.removeImage(m.Actor.ID)
		case imageRefresh[m.Action]:
			err = w.refreshImage(rctx, cli, m.Actor.ID, true)
		}
	case eventVolume:
		switch m.Action {
		case actionDestroy:
			w.inv.removeVolume(m.Actor.ID)
		case actionCreate:
			err = w.refreshVolume(rctx, cli, m.Actor.ID)
		}
	}
	if err != nil && ctx.Err() == nil {
		w.logger.Warn("cannot apply docker event", zap.Error(err),
			zap.String("type", string(m.Type)), zap.String("action", string(m.Action)), zap.String("id", m.Actor.ID))
	}
}

// refreshContainer re-reads one container through the list API, so that
// events and full syncs produce identical entries. A container that is
// gone is removed. name is the container name the event carries: right
// after renaming a running container, dockerd 20.10 lists both the old and
// the new name, and the event says which one is current.
func (w *Watcher) refreshContainer(ctx context.Context, cli dockerAPI, id, name string) error {
	cl, err := cli.ContainerList(ctx, containerListOptions{All: true, Filters: listFilters{"id": {id}}})
	if err != nil {
		return fmt.Errorf("list container %s: %w", id, err)
	}
	for _, s := range cl {
		if s.ID == id { // the id filter also matches prefixes
			c := containerFromSummary(s)
			if name != "" && slices.Contains(s.Names, "/"+name) {
				c.Name = name
			}
			w.inv.putContainer(c)
			return nil
		}
	}
	w.inv.removeContainer(id)
	return nil
}

// refreshImage inspects ref (an image id, or a reference for pull events)
// and makes the inventory hold exactly its current tags. When follow is
// set, images that lost a tag to it are refreshed too (without following
// further), since Docker sends them no event.
func (w *Watcher) refreshImage(ctx context.Context, cli dockerAPI, ref string, follow bool) error {
	r, err := cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		w.inv.removeImage(ref)
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}
	lost := w.inv.setImage(r.ID, imagesFromInspect(r))
	if !follow {
		return nil
	}
	for _, id := range lost {
		if err := w.refreshImage(ctx, cli, id, false); err != nil {
			return err
		}
	}
	return nil
}

// refreshVolume inspects one volume; a volume that is gone is removed.
func (w *Watcher) refreshVolume(ctx context.Context, cli dockerAPI, name string) error {
	v, err := cli.VolumeInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		w.inv.removeVolume(name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	w.inv.putVolume(volumeFrom(v))
	return nil
}
