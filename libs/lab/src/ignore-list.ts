import { formatWordList } from "@vmbs/config";
import { createVirsh } from "@vmbs/virt";

/**
 * A VM_IGNORED_LIST value naming every persistent domain of the host except `keep`: an agent started with it
 * never touches a real VM, nor another test run's lab domains, however their names are written.
 */
export async function ignoredListExcept(uri: string, keep: readonly string[] = []): Promise<string> {
  const names = (await createVirsh(uri).listPersistentDomains()).map((d) => d.name).filter((n) => !keep.includes(n));
  return formatWordList(names);
}
