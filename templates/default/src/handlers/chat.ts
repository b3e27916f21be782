import { Command, type Context } from '@diocp/core';

export interface ChatMessage {
  from: string;
  text: string;
}

/**
 * 0x03 (JSON): `{"text":"hi"}` → PUSH `{"from":"alice","text":"hi"}` on command 0x03 to every
 * other connection; the sender gets `{"delivered": <count>}` (-1 when it ran on a handler
 * thread, which cannot know how many connections the gateway reached).
 */
@Command(0x03, { codec: 'json' })
export class Chat {
  handle(req: { text?: unknown }, ctx: Context): { delivered: number } {
    const text = typeof req?.text === 'string' ? req.text : '';
    const from = (ctx.session.get('user') as string | undefined) ?? `guest-${ctx.connectionId}`;
    const message: ChatMessage = { from, text };
    // { except } works in every dispatch mode (a filter function needs inline dispatch).
    const delivered = ctx.gateway.broadcast(0x03, message, { except: ctx.connectionId });
    return { delivered };
  }
}
