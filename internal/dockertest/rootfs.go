package dockertest

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// BusyboxPath is the static busybox binary the test image is built from
// (Debian package busybox-static or busybox).
const BusyboxPath = "/usr/bin/busybox"

// BusyboxRef is the reference ImportBusybox tags the image with.
const BusyboxRef = "rdd-busybox:test"

// BusyboxApplets are the commands the test image provides in /bin, as
// symlinks to /bin/busybox.
var BusyboxApplets = []string{
	"sh", "true", "false", "sleep", "echo", "cat", "ls", "env", "id", "kill",
	"printf", "test", "mkdir", "rm", "touch", "wc", "hostname", "ps",
}

// rootfsTime is the modification time of every entry, so that the same
// busybox binary always gives the same tarball (and the same image id).
var rootfsTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteBusyboxRootfs writes a root filesystem tarball to w: /bin/busybox
// (copied from busybox), the BusyboxApplets as symlinks to it, /usr/bin/env
// as a hard link, the usual empty directories, and a minimal /etc/passwd and
// /etc/group. The output is deterministic for a given busybox binary.
func WriteBusyboxRootfs(w io.Writer, busybox string) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("dockertest: read busybox (apt-get install busybox-static): %w", err)
	}
	tw := tar.NewWriter(w)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: rootfsTime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: rootfsTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	link := func(typ byte, name, target string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777, ModTime: rootfsTime, Format: tar.FormatPAX})
	}
	steps := []func() error{
		func() error { return dir("bin", 0o755) },
		func() error { return dir("dev", 0o755) },
		func() error { return dir("etc", 0o755) },
		func() error { return dir("proc", 0o555) },
		func() error { return dir("root", 0o700) },
		func() error { return dir("sys", 0o555) },
		func() error { return dir("tmp", 0o1777) },
		func() error { return dir("usr", 0o755) },
		func() error { return dir("usr/bin", 0o755) },
		func() error { return dir("var", 0o755) },
		func() error { return file("bin/busybox", 0o755, bb) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")) },
		func() error { return link(tar.TypeLink, "usr/bin/env", "bin/busybox") },
	}
	for _, a := range BusyboxApplets {
		steps = append(steps, func() error { return link(tar.TypeSymlink, "bin/"+a, "busybox") })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("dockertest: write rootfs: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("dockertest: write rootfs: %w", err)
	}
	return nil
}

// ImportBusyboxImage builds the busybox root filesystem and imports it into
// the daemon behind cli as ref, with /bin/sh as its default command. It
// returns the image id. Nothing is pulled from a registry.
func ImportBusyboxImage(ctx context.Context, cli client.APIClient, ref string) (string, error) {
	pr, pw := io.Pipe()
	go func() { // writer: ends when the tarball is written or the reader is closed
		bw := bufio.NewWriterSize(pw, 256<<10)
		err := WriteBusyboxRootfs(bw, BusyboxPath)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref,
		image.ImportOptions{Changes: []string{`CMD ["/bin/sh"]`}, Message: "rdd dockertest busybox"})
	if err != nil {
		return "", fmt.Errorf("dockertest: import %s: %w", ref, err)
	}
	defer rc.Close()
	// The answer is a stream of JSON progress messages; an error is one of them.
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("dockertest: import %s: read answer: %w", ref, err)
		}
		if m.Error != "" {
			return "", fmt.Errorf("dockertest: import %s: %s", ref, m.Error)
		}
	}
	insp, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("dockertest: inspect imported %s: %w", ref, err)
	}
	return insp.ID, nil
}
