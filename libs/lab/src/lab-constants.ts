/** Every domain a lab creates has a name starting with this, so stale ones can be swept. */
export const LAB_DOMAIN_PREFIX = "vmbs-lab-";

/** Default folder of lab disk images: inside libvirt's images folder, which the qemu user can traverse. */
export const DEFAULT_LAB_IMAGE_DIR = "/var/lib/libvirt/images/vmbs-lab";
