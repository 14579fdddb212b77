import { formatWordList } from "@vmbs/config";
import { createLibvirt } from "@vmbs/virt";

/**
 * A VM_IGNORED_LIST value naming every persistent domain of the host except `keep`: an agent started with it
 * never touches a real VM, nor another test run's lab domains, however their names are written.
 */
export async function ignoredListExcept(uri: string, keep: readonly string[] = []): Promise<string> {
  const libvirt = createLibvirt(uri);
  try {
    const names = (await libvirt.listPersistentDomains()).map((d) => d.name).filter((n) => !keep.includes(n));
    return formatWordList(names);
  } finally {
    await libvirt.close();
  }
}
