import { singleton } from '@diocp/core';

/** A toy user store, injected into handlers by type (one instance for the whole server). */
@singleton()
export class UserDirectory {
  private readonly passwords = new Map<string, string>([
    ['alice', 'wonderland'],
    ['bob', 'builder'],
  ]);

  check(user: string, password: string): boolean {
    return this.passwords.get(user) === password;
  }
}
