#!/usr/bin/env bash
# Builds the test guest from Debian packages: the Debian kernel, a busybox
# initramfs carrying the kernel modules it needs, and a bootable FAT disk
# (syslinux) holding both. Output (cached by input hash):
#   $KVTS_CACHE/guest/<hash>/{vmlinuz,initramfs.gz,disk.qcow2}
# Prints the output directory.
source "$(dirname "$0")/../../hack/lib.sh"
here="$REPO_ROOT/images/guest"
packages=(linux-image-amd64 busybox-static syslinux syslinux-common mtools dosfstools qemu-guest-agent qemu-utils kmod cpio openssl dropbear-bin openssh-sftp-server)
ensure_debian_packages "${packages[@]}"

kver=$(ls /lib/modules | sort -V | tail -n1)
hash=$(cat "$here/init" "$here/udhcpc.script" "$here/power-button-watcher" "$here/shutdown" "$0" <(echo "$kver") | sha256sum | cut -c1-12)
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
hashpw=$(openssl passwd -6 gocubsgo)
printf 'root:x:0:0:root:/root:/bin/sh\ncirros:x:1000:1000:cirros:/home/cirros:/bin/sh\n' > "$root/etc/passwd"
printf 'root:%s:19000::::::\ncirros:%s:19000::::::\n' "$hashpw" "$hashpw" > "$root/etc/shadow"
printf 'root:x:0:\ncirros:x:1000:\n' > "$root/etc/group"
mkdir -p "$root/home/cirros"
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
echo '127.0.0.1 localhost' > "$root/etc/hosts"
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

# Kernel modules: the drivers the guest needs and everything they depend on.
modules=(virtio_pci virtio_blk virtio_net virtio_scsi virtio_console virtio_rng virtio_balloon virtio_input
  ahci sd_mod sr_mod cdrom isofs vfat nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 ext4 e1000 e1000e 8139cp button evdev i6300esb
  usb_storage uas xhci_pci usbhid hid_generic)
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

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -9 > "$work/initramfs.gz"
cp "/boot/vmlinuz-$kver" "$work/vmlinuz"

# The boot disk: a FAT file system with syslinux in its boot sector, no partition table.
disk="$work/disk.img"
truncate -s 64M "$disk"
mkfs.vfat -n KVTSBOOT "$disk" >/dev/null
export MTOOLS_SKIP_CHECK=1
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /vmlinuz\n  INITRD /initramfs.gz\n  APPEND console=tty0 console=ttyS0 quiet\n' > "$work/syslinux.cfg"
mcopy -i "$disk" "$work/vmlinuz" "$work/initramfs.gz" "$work/syslinux.cfg" ::/
syslinux --install "$disk"
mkdir -p "$out.tmp"
qemu-img convert -f raw -O qcow2 "$disk" "$out.tmp/disk.qcow2"
cp "$work/vmlinuz" "$work/initramfs.gz" "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
log "test guest built in $out"
echo "$out"
