import { ParseError, type CancelableRequest, type Response } from 'got';
import { MalformedAnswerError } from './provider-answer.js';

/** The most a provider's answer may be: a payment's JSON is a few hundred bytes. */
export const MAX_PROVIDER_ANSWER_BYTES = 64 * 1024;

/**
 * A provider request whose answer is read only up to MAX_PROVIDER_ANSWER_BYTES: past that it is
 * cancelled, as a call that went unanswered (retried under the same key), so that no provider can
 * fill the worker's memory with an answer that does not end.
 */
export async function bounded<T>(request: CancelableRequest<Response<T>>): Promise<Response<T>> {
  void request.on('downloadProgress', ({ transferred }: { transferred: number }) => {
    if (transferred > MAX_PROVIDER_ANSWER_BYTES) {
      request.cancel(`the provider's answer passed ${MAX_PROVIDER_ANSWER_BYTES} bytes`);
    }
  });
  try {
    return await request;
  } catch (err) {
    // got's message quotes the body it could not parse: it would reach logs and workflow histories.
    if (err instanceof ParseError)
      throw new MalformedAnswerError(`the provider answered ${err.response.statusCode} with a body that is not JSON`);
    throw err;
  }
}
