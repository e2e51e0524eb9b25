package lima

import "strings"

// Accelerators RDD_VM_ACCEL accepts.
const (
	AccelKVM = "kvm"
	AccelHVF = "hvf"
	AccelTCG = "tcg"
)

// tcgAccel is QEMU's software emulation on every host core: single-threaded
// TCG makes a boot several times slower.
const tcgAccel = "tcg,thread=multi"

// DefaultAccel is the accelerator RDD_VM_ACCEL defaults to: what the host
// has. kvmUsable must say whether a guest really boots under /dev/kvm, not
// only whether it exists: nested virtualisation can offer a /dev/kvm that
// stock kernels do not boot under.
func DefaultAccel(goos string, kvmUsable bool) string {
	switch {
	case goos == "darwin":
		return AccelHVF
	case goos == "linux" && kvmUsable:
		return AccelKVM
	}
	return AccelTCG
}

// RewriteQEMUArgs is the command line rdd's QEMU wrapper runs instead of
// Lima's. Lima v1.2.1 always asks for the hardware accelerator on the
// native architecture, so for accel "tcg" it swaps KVM/HVF (-accel,
// -enable-kvm, -machine …,accel=…) for -accel tcg,thread=multi and -cpu
// host, which needs KVM, for -cpu max. Other accelerators leave the
// arguments as they are. restrict isolates the guest from everything but
// the host's forwarded ports: QEMU's user network gets restrict=on. args is
// not modified.
func RewriteQEMUArgs(args []string, accel string, restrict bool) []string {
	if isQuery(args) {
		// Lima asks QEMU what it supports (-M none -accel help): the
		// answer must be QEMU's own, and adding -accel would boot a machine.
		return append([]string(nil), args...)
	}
	out := make([]string, 0, len(args)+2)
	tcg := accel == AccelTCG
	haveTCG := false
	insertAt := -1 // -accel tcg takes the place of the first hardware accelerator
	dropped := func() {
		if insertAt < 0 {
			insertAt = len(out)
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		opt := "-" + strings.TrimLeft(a, "-") // QEMU takes --opt as -opt
		hasValue := i+1 < len(args)
		switch {
		case tcg && opt == "-enable-kvm":
			dropped()
			continue
		case tcg && opt == "-accel" && hasValue:
			if name, _, _ := strings.Cut(args[i+1], ","); name == AccelTCG {
				haveTCG = true
				out = append(out, a, args[i+1])
			} else {
				dropped()
			}
			i++
			continue
		case tcg && (opt == "-machine" || opt == "-M") && hasValue:
			v, removed, isTCG := withoutAccel(args[i+1])
			haveTCG = haveTCG || isTCG
			if v != "" {
				out = append(out, a, v)
			}
			if removed {
				dropped()
			}
			i++
			continue
		case tcg && opt == "-cpu" && hasValue:
			v := args[i+1]
			if v == "host" || strings.HasPrefix(v, "host,") {
				v = "max" + strings.TrimPrefix(v, "host")
			}
			out = append(out, a, v)
			i++
			continue
		case restrict && (opt == "-netdev" || opt == "-nic") && hasValue:
			out = append(out, a, restricted(args[i+1]))
			i++
			continue
		}
		out = append(out, a)
	}
	if tcg && !haveTCG {
		if insertAt < 0 {
			insertAt = len(out)
		}
		out = append(out[:insertAt], append([]string{"-accel", tcgAccel}, out[insertAt:]...)...)
	}
	return out
}

// withoutAccel is a -machine value without its accel= option unless that
// names TCG alone; removed says whether one was taken out.
func withoutAccel(v string) (rest string, removed, isTCG bool) {
	parts := strings.Split(v, ",")
	kept := parts[:0:0]
	for _, p := range parts {
		if name, ok := strings.CutPrefix(p, "accel="); ok {
			if name == AccelTCG {
				isTCG = true
			} else {
				removed = true
				continue
			}
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, ","), removed, isTCG
}

// restricted is a -netdev/-nic value with restrict=on when it is QEMU's
// user network; other backends have no such option.
func restricted(v string) string {
	parts := strings.Split(v, ",")
	if parts[0] != "user" {
		return v
	}
	for i, p := range parts {
		if strings.HasPrefix(p, "restrict=") {
			parts[i] = "restrict=on"
			return strings.Join(parts, ",")
		}
	}
	return v + ",restrict=on"
}

// isQuery: a command line that asks QEMU a question and boots nothing.
func isQuery(args []string) bool {
	for i, a := range args {
		opt := "-" + strings.TrimLeft(a, "-")
		switch {
		case opt == "-version" || opt == "-help":
			return true
		case (opt == "-accel" || opt == "-machine" || opt == "-M" || opt == "-cpu" || opt == "-device") && i+1 < len(args) && (args[i+1] == "help" || args[i+1] == "?"):
			return true
		}
	}
	return false
}
