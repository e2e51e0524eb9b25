package engine

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Container is one Docker container as last observed (GET /v1/engine/containers).
type Container struct {
	// ID is the full 64-hex container id; it is the inventory key.
	ID string `json:"id"`
	// Name without the leading "/".
	Name    string `json:"name"`
	Image   string `json:"image"`
	ImageID string `json:"imageID,omitempty"`
	Command string `json:"command,omitempty"`
	// State is Docker's machine-readable state: created, running, paused,
	// restarting, removing, exited or dead.
	State string `json:"state"`
	// Status is Docker's human summary when observed, e.g. "Up 3 minutes" or
	// "Exited (0) 2 seconds ago"; its relative times age.
	Status  string            `json:"status"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Ports are sorted by (PrivatePort, Type, IP, PublicPort).
	Ports []Port `json:"ports,omitempty"`
}

// Port is one exposed or published container port.
type Port struct {
	PrivatePort uint16 `json:"privatePort"`
	PublicPort  uint16 `json:"publicPort,omitempty"`
	Type        string `json:"type"`
	IP          string `json:"ip,omitempty"`
}

// Image is one tag of a Docker image, or a dangling image (GET
// /v1/engine/images). An image with n tags is n entries with the same ID.
type Image struct {
	// ID is the image id ("sha256:…").
	ID string `json:"id"`
	// RepoTag is one "repo:tag" of the image; "" for a dangling image, which
	// has exactly one entry. (RepoTag, or ID when dangling) is the key.
	RepoTag     string            `json:"repoTag"`
	RepoDigests []string          `json:"repoDigests,omitempty"`
	Created     time.Time         `json:"created"`
	Size        int64             `json:"size"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Volume is one Docker volume (GET /v1/engine/volumes).
type Volume struct {
	// Name is the volume name; it is the key.
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Mountpoint string            `json:"mountpoint,omitempty"`
	Scope      string            `json:"scope,omitempty"`
	CreatedAt  string            `json:"createdAt,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// Counts is the size of an Inventory.
type Counts struct {
	Containers int `json:"containers"`
	Images     int `json:"images"`
	Volumes    int `json:"volumes"`
}

// Inventory is the in-memory view of one Docker engine's containers, images
// and volumes. The Watcher that owns it is its only writer; any goroutine may
// read it. Readers get sorted deep copies, never shared state.
type Inventory struct {
	mu         sync.Mutex
	containers map[string]Container // by ID
	images     map[string]Image     // by imageKey
	volumes    map[string]Volume    // by Name
	rev        uint64
	changed    chan struct{} // closed and replaced on every change
}

// NewInventory returns an empty Inventory.
func NewInventory() *Inventory {
	return &Inventory{
		containers: map[string]Container{},
		images:     map[string]Image{},
		volumes:    map[string]Volume{},
		changed:    make(chan struct{}),
	}
}

// Containers returns the containers sorted by Name, then ID.
func (inv *Inventory) Containers() []Container {
	inv.mu.Lock()
	out := make([]Container, 0, len(inv.containers))
	for _, c := range inv.containers {
		c.Labels = maps.Clone(c.Labels)
		c.Ports = slices.Clone(c.Ports)
		out = append(out, c)
	}
	inv.mu.Unlock()
	slices.SortFunc(out, func(a, b Container) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Images returns the images sorted by RepoTag with dangling images last,
// then by ID.
func (inv *Inventory) Images() []Image {
	inv.mu.Lock()
	out := make([]Image, 0, len(inv.images))
	for _, im := range inv.images {
		im.Labels = maps.Clone(im.Labels)
		im.RepoDigests = slices.Clone(im.RepoDigests)
		out = append(out, im)
	}
	inv.mu.Unlock()
	slices.SortFunc(out, func(a, b Image) int {
		return cmp.Or(
			cmp.Compare(boolInt(a.RepoTag == ""), boolInt(b.RepoTag == "")),
			strings.Compare(a.RepoTag, b.RepoTag),
			strings.Compare(a.ID, b.ID))
	})
	return out
}

// Volumes returns the volumes sorted by Name.
func (inv *Inventory) Volumes() []Volume {
	inv.mu.Lock()
	out := make([]Volume, 0, len(inv.volumes))
	for _, v := range inv.volumes {
		v.Labels = maps.Clone(v.Labels)
		out = append(out, v)
	}
	inv.mu.Unlock()
	slices.SortFunc(out, func(a, b Volume) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Counts returns the number of containers, image entries and volumes.
func (inv *Inventory) Counts() Counts {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.countsLocked()
}

func (inv *Inventory) countsLocked() Counts {
	return Counts{Containers: len(inv.containers), Images: len(inv.images), Volumes: len(inv.volumes)}
}

// Rev returns a number that grows with every change of the inventory.
func (inv *Inventory) Rev() uint64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.rev
}

// Changed returns a channel that is closed at the next change of the
// inventory. Take it before reading, then wait on it, to miss nothing.
func (inv *Inventory) Changed() <-chan struct{} {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.changed
}

// bumpLocked records a change and wakes the waiters of Changed.
func (inv *Inventory) bumpLocked() {
	inv.rev++
	close(inv.changed)
	inv.changed = make(chan struct{})
}

// replace swaps in the result of a full sync in one step, so readers never
// see half of it.
func (inv *Inventory) replace(cs map[string]Container, ims map[string]Image, vs map[string]Volume) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.containers, inv.images, inv.volumes = cs, ims, vs
	inv.bumpLocked()
}

// clear empties the inventory.
func (inv *Inventory) clear() {
	inv.replace(map[string]Container{}, map[string]Image{}, map[string]Volume{})
}

func (inv *Inventory) putContainer(c Container) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.containers[c.ID] = c
	inv.bumpLocked()
}

func (inv *Inventory) removeContainer(id string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if _, ok := inv.containers[id]; ok {
		delete(inv.containers, id)
		inv.bumpLocked()
	}
}

// setImage makes the entries of image id exactly ims (its tags, or one
// dangling entry): entries of id whose tag is gone are pruned, and a tag
// that moved here from another image replaces that image's entry. It
// returns the ids of other images that lost a tag this way.
func (inv *Inventory) setImage(id string, ims []Image) (lostTag []string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for k, im := range inv.images {
		if im.ID == id {
			delete(inv.images, k)
		}
	}
	for _, im := range ims {
		k := imageKey(im)
		if old, ok := inv.images[k]; ok && old.ID != id && !slices.Contains(lostTag, old.ID) {
			lostTag = append(lostTag, old.ID)
		}
		inv.images[k] = im
	}
	inv.bumpLocked()
	return lostTag
}

// removeImage removes every entry whose ID or RepoTag is ref.
func (inv *Inventory) removeImage(ref string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	n := len(inv.images)
	maps.DeleteFunc(inv.images, func(_ string, im Image) bool { return im.ID == ref || im.RepoTag == ref })
	if len(inv.images) != n {
		inv.bumpLocked()
	}
}

func (inv *Inventory) putVolume(v Volume) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.volumes[v.Name] = v
	inv.bumpLocked()
}

func (inv *Inventory) removeVolume(name string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if _, ok := inv.volumes[name]; ok {
		delete(inv.volumes, name)
		inv.bumpLocked()
	}
}

// imageKey is the inventory key of an image entry: its tag, or its id when
// dangling. Tags contain ':' and ids start with "sha256:", so they never clash.
func imageKey(im Image) string {
	if im.RepoTag == "" {
		return im.ID
	}
	return im.RepoTag
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// containerFromSummary converts a list entry.
func containerFromSummary(s containerSummary) Container {
	c := Container{
		ID:      s.ID,
		Name:    containerName(s.Names),
		Image:   s.Image,
		ImageID: s.ImageID,
		Command: s.Command,
		State:   s.State,
		Status:  s.Status,
		Created: time.Unix(s.Created, 0).UTC(),
		Labels:  nilIfEmpty(s.Labels),
	}
	for _, p := range s.Ports {
		c.Ports = append(c.Ports, Port{PrivatePort: p.PrivatePort, PublicPort: p.PublicPort, Type: p.Type, IP: p.IP})
	}
	slices.SortFunc(c.Ports, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.PrivatePort, b.PrivatePort), strings.Compare(a.Type, b.Type),
			strings.Compare(a.IP, b.IP), cmp.Compare(a.PublicPort, b.PublicPort))
	})
	return c
}

// containerName picks the container's own name from the list's Names: the
// one without a further "/" (the others are legacy link aliases), without
// its leading "/".
func containerName(names []string) string {
	best := ""
	for _, n := range names {
		n = strings.TrimPrefix(n, "/")
		if best == "" || (strings.Contains(best, "/") && !strings.Contains(n, "/")) {
			best = n
		}
	}
	return best
}

// imagesFromSummary returns one entry per tag of a listed image, or one
// dangling entry.
func imagesFromSummary(s imageSummary) []Image {
	return imageEntries(s.ID, s.RepoTags, s.RepoDigests, time.Unix(s.Created, 0).UTC(), s.Size, s.Labels)
}

// imagesFromInspect is imagesFromSummary for an inspected image.
func imagesFromInspect(r imageInspectResponse) []Image {
	created, _ := time.Parse(time.RFC3339Nano, r.Created)
	var labels map[string]string
	if r.Config != nil {
		labels = r.Config.Labels
	}
	// The list reports whole seconds; truncate so both sources agree.
	return imageEntries(r.ID, r.RepoTags, r.RepoDigests, created.Truncate(time.Second).UTC(), r.Size, labels)
}

func imageEntries(id string, tags, digests []string, created time.Time, size int64, labels map[string]string) []Image {
	digests = slices.Sorted(slices.Values(digests))
	if len(digests) == 0 {
		digests = nil
	}
	base := Image{ID: id, RepoDigests: digests, Created: created, Size: size, Labels: nilIfEmpty(labels)}
	var out []Image
	for _, t := range tags {
		if t == "" || t == "<none>:<none>" || slices.ContainsFunc(out, func(im Image) bool { return im.RepoTag == t }) {
			continue
		}
		im := base
		im.RepoTag = t
		out = append(out, im)
	}
	if len(out) == 0 {
		out = append(out, base)
	}
	return out
}

func volumeFrom(v volumeResponse) Volume {
	return Volume{
		Name:       v.Name,
		Driver:     v.Driver,
		Mountpoint: v.Mountpoint,
		Scope:      v.Scope,
		CreatedAt:  v.CreatedAt,
		Labels:     nilIfEmpty(v.Labels),
	}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
