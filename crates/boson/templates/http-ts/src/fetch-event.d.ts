// The service-worker `fetch` event the component's JavaScript engine dispatches for each request
// (TypeScript's DOM library has Request and Response, but not this event).

interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
}

declare function addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
