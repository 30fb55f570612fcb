#!/usr/bin/env bash
# Builds the test guest from Debian packages: the Debian kernel, a busybox
# initramfs carrying the kernel modules it needs, and a bootable FAT disk
# (syslinux) holding both. Output (cached by input hash):
#   $KVTS_CACHE/guest/<hash>/{vmlinuz,initramfs.gz,disk.qcow2}
#   $KVTS_CACHE/guest/<hash>/<flavour>/{initramfs.gz,disk.qcow2}
# The top-level initramfs and disk are the cirros flavour. A flavour is the
# guest as one of upstream's test images behaves at its console (accounts,
# banner, shell prompt): cirros, alpine or fedora. Its files go in a second
# cpio archive appended to the initramfs (the kernel unpacks both, the later
# one over the earlier), with /etc/kvts-flavour naming it.
# Prints the output directory.
source "$(dirname "$0")/../../hack/lib.sh"
here="$REPO_ROOT/images/guest"
packages=(gcc libc6-dev e2fsprogs util-linux coreutils linux-image-amd64 busybox-static syslinux syslinux-common mtools dosfstools qemu-guest-agent qemu-utils kmod cpio openssl dropbear-bin openssh-sftp-server)
ensure_debian_packages "${packages[@]}"

kver=$(ls /lib/modules | sort -V | tail -n1)
hash=$(cat "$here/init" "$here/udhcpc.script" "$here/power-button-watcher" "$here/shutdown" "$here/systemctl" "$here/sudo.c" "$0" <(echo "$kver") | sha256sum | cut -c1-12)
out="$KVTS_CACHE/guest/$hash"
if [ -f "$out/disk.qcow2" ]; then echo "$out"; exit 0; fi
log "building the test guest (kernel $kver)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,mnt,lib/modules,usr/sbin,usr/bin}

cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list-full); do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/udhcpc.script" "$root/etc/udhcpc.script"
install -m 0755 "$here/power-button-watcher" "$root/sbin/power-button-watcher"
install -m 0755 "$here/shutdown" "$root/sbin/shutdown"
install -m 0755 "$here/systemctl" "$root/usr/bin/systemctl"
# /init hands over to busybox's init, which keeps the console login going and
# carries out poweroff, halt and reboot (those applets signal PID 1).
printf 'ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n::ctrlaltdel:/sbin/reboot\n::shutdown:/bin/sync\n' > "$root/etc/inittab"
gcc -static -O2 -s -o "$work/sudo" "$here/sudo.c"
install -m 4755 "$work/sudo" "$root/usr/bin/sudo"
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
echo '127.0.0.1 localhost' > "$root/etc/hosts"
# Alpine's entry for the first CD-ROM: upstream's tests run `mount /dev/cdrom` (busybox takes the type from here).
mkdir -p "$root/media/cdrom"
echo '/dev/cdrom /media/cdrom iso9660 noauto,ro 0 0' > "$root/etc/fstab"
printf 'NAME="kubevirt-ts test guest"\nID=kvts-guest\nVERSION_ID=1\nPRETTY_NAME="kubevirt-ts test guest 1"\n' > "$root/etc/os-release"

# A binary from the host, at the given path in the guest, with the shared libraries it loads.
copy_with_libs() {
  mkdir -p "$root$(dirname "$2")" && cp "$1" "$root$2"
  for lib in $(ldd "$1" | grep -o '/[^ ]*'); do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
}
# The guest agent; an SSH server (dropbear) with the SFTP server it runs for scp, where it looks for it.
copy_with_libs /usr/sbin/qemu-ga /usr/sbin/qemu-ga
copy_with_libs /usr/sbin/dropbear /usr/sbin/dropbear
copy_with_libs /usr/lib/openssh/sftp-server /usr/lib/sftp-server
# Test tooling upstream's tests run in their guests that busybox lacks or cuts short.
copy_with_libs /usr/sbin/blkid /usr/sbin/blkid
copy_with_libs /usr/bin/lsblk /usr/bin/lsblk
copy_with_libs /usr/sbin/mke2fs /usr/sbin/mke2fs
for name in mkfs.ext2 mkfs.ext3 mkfs.ext4; do ln -sf mke2fs "$root/usr/sbin/$name"; done
copy_with_libs /usr/sbin/resize2fs /usr/sbin/resize2fs
copy_with_libs /usr/bin/nohup /usr/bin/nohup

# Kernel modules: the drivers the guest needs and everything they depend on.
modules=(virtio_pci virtio_blk virtio_net virtio_scsi virtio_console virtio_rng virtio_balloon virtio_input
  ahci sd_mod sr_mod cdrom isofs vfat nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 ext4 e1000 e1000e 8139cp button evdev i6300esb
  usb_storage uas xhci_pci usbhid hid_generic loop pvpanic_mmio pvpanic_pci)
printf '%s\n' "${modules[@]}" > "$root/etc/modules"
mkdir -p "$root/lib/modules/$kver"
cp "/lib/modules/$kver/modules.order" "/lib/modules/$kver/modules.builtin" "/lib/modules/$kver/modules.builtin.modinfo" "$root/lib/modules/$kver/" 2>/dev/null || true
for m in "${modules[@]}"; do
  for f in $(modprobe --set-version "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'); do
    mkdir -p "$root$(dirname "$f")"
    cp "$f" "$root$f"
  done
done
depmod -b "$root" "$kver"

(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) | gzip -9 > "$work/base.cpio.gz"
cp "/boot/vmlinuz-$kver" "$work/vmlinuz"

# The files of one flavour, into the directory $2.
flavour_files() {
  local flavour=$1 d=$2
  mkdir -p "$d/etc" "$d/root"
  echo "$flavour" > "$d/etc/kvts-flavour"
  case "$flavour" in
    cirros) # user cirros, password gocubsgo, sudo for root (root has the same password here)
      local pw; pw=$(openssl passwd -6 gocubsgo)
      printf 'root:x:0:0:root:/root:/bin/sh\ncirros:x:1000:1000:cirros:/home/cirros:/bin/sh\n' > "$d/etc/passwd"
      printf 'root:%s:19000::::::\ncirros:%s:19000::::::\n' "$pw" "$pw" > "$d/etc/shadow"
      printf 'root:x:0:\ncirros:x:1000:\n' > "$d/etc/group"
      mkdir -p "$d/home/cirros"
      printf "login as 'cirros' user. default password: 'gocubsgo'. use 'sudo' for root.\n" > "$d/etc/issue" ;;
    alpine) # root with no password; the prompt is host:dir#
      printf 'root:x:0:0:root:/root:/bin/sh\n' > "$d/etc/passwd"
      printf 'root::19000:0:::::\n' > "$d/etc/shadow"
      printf 'root:x:0:root\n' > "$d/etc/group"
      cat > "$d/etc/issue" <<'ISSUE'

Welcome to Alpine Linux (kubevirt-ts test guest)
Kernel \r on an \m (\l)

ISSUE
      echo "export PS1='\\h:\\w\\\$ '" > "$d/etc/profile" ;;
    fedora) # user fedora, password fedora, sudo for root; the prompt is [user@host dir]$
      local pw; pw=$(openssl passwd -6 fedora)
      printf 'root:x:0:0:root:/root:/bin/sh\nfedora:x:1000:1000:fedora:/home/fedora:/bin/sh\n' > "$d/etc/passwd"
      printf 'root:!:19000::::::\nfedora:%s:19000::::::\n' "$pw" > "$d/etc/shadow"
      printf 'root:x:0:\nwheel:x:10:fedora\nfedora:x:1000:\n' > "$d/etc/group"
      mkdir -p "$d/home/fedora"
      cat > "$d/etc/issue" <<'ISSUE'
Fedora Linux (kubevirt-ts test guest)
Kernel \r on an \m (\l)

ISSUE
      echo "export PS1='[\\u@\\h \\W]\\\$ '" > "$d/etc/profile" ;;
  esac
  chmod 0640 "$d/etc/shadow"
  [ -d "$d/home/$flavour" ] && chown 1000:1000 "$d/home/$flavour"
  return 0
}

# The boot disk for an initramfs ($1) into $2/disk.qcow2.
boot_disk() {
  local disk="$work/disk.img"
  rm -f "$disk"
  truncate -s 64M "$disk"
  mkfs.vfat -n KVTSBOOT "$disk" >/dev/null
  mcopy -i "$disk" "$work/vmlinuz" ::/vmlinuz
  mcopy -i "$disk" "$1" ::/initramfs.gz
  mcopy -i "$disk" "$work/syslinux.cfg" ::/
  syslinux --install "$disk"
  qemu-img convert -f raw -O qcow2 "$disk" "$2/disk.qcow2"
}

# The boot disk: a FAT file system with syslinux in its boot sector, no partition table.
export MTOOLS_SKIP_CHECK=1
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /vmlinuz\n  INITRD /initramfs.gz\n  APPEND console=tty0 console=ttyS0 quiet\n' > "$work/syslinux.cfg"
mkdir -p "$out.tmp"
for flavour in cirros alpine fedora; do
  files="$work/flavour-$flavour"
  flavour_files "$flavour" "$files"
  mkdir -p "$out.tmp/$flavour"
  # Concatenated gzip'd cpio archives: the kernel unpacks them in turn.
  cat "$work/base.cpio.gz" <(cd "$files" && find . -print0 | cpio --null -o -H newc --quiet | gzip -9) > "$out.tmp/$flavour/initramfs.gz"
  boot_disk "$out.tmp/$flavour/initramfs.gz" "$out.tmp/$flavour"
done
cp "$work/vmlinuz" "$out.tmp/"
cp "$out.tmp/cirros/initramfs.gz" "$out.tmp/cirros/disk.qcow2" "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
log "test guest built in $out"
echo "$out"
