import { ApplicationError, Command, type Context } from '@diocp/core';
import { UserDirectory } from '../services/user-directory.js';

/** 0x04 (JSON): `{"user":"alice","password":"wonderland"}` → `{"user":"alice"}`; remembers the user in the session. */
@Command(0x04, { codec: 'json' })
export class Login {
  // Injected by type through tsyringe.
  constructor(private readonly users: UserDirectory) {}

  handle(req: { user?: string; password?: string }, ctx: Context): { user: string } {
    if (typeof req?.user !== 'string' || typeof req.password !== 'string' || !this.users.check(req.user, req.password)) {
      throw new ApplicationError(101, 'wrong user or password');
    }
    ctx.session.set('user', req.user);
    return { user: req.user };
  }
}
